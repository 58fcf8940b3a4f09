# Accuracy, mean 95 % interval width of the predicted class and mean epistemic
# uncertainty per corruption; the first bar is the clean test set.
if (!exists("dir")) dir = 'build/report'
if (!exists("out")) out = 'docs/corruptions.png'
set terminal pngcairo size 1000,900 font "sans,10" noenhanced
set output out
set multiplot layout 3,1 margins 0.08,0.95,0.10,0.95 spacing 0,0.04 title "MNIST-C-style corruptions (first bar: clean)"
set style fill solid 0.6 border -1
set boxwidth 0.7
set grid ytics
unset key
set xrange [-0.6:15.6]
set format x ""
set ylabel "accuracy"
set yrange [0:1]
clean_acc = real(system(sprintf("awk 'NR==2{print $2}' %s/corruptions.tsv", dir)))
clean_w = real(system(sprintf("awk 'NR==2{print $5}' %s/corruptions.tsv", dir)))
clean_e = real(system(sprintf("awk 'NR==2{print $8}' %s/corruptions.tsv", dir)))
plot dir.'/corruptions.tsv' using 0:2:($0 == 0 ? 0x228833 : 0x4477aa) with boxes lc rgb variable, \
     clean_acc with lines dt 2 lc rgb "gray30"
set ylabel "interval width"
set autoscale y; set yrange [0:*]
plot dir.'/corruptions.tsv' using 0:5:($0 == 0 ? 0x228833 : 0xcc6677) with boxes lc rgb variable, \
     clean_w with lines dt 2 lc rgb "gray30"
set ylabel "epistemic (nats)"
set format x "%g"
set xtics rotate by -35 left
plot dir.'/corruptions.tsv' using 0:8:($0 == 0 ? 0x228833 : 0xddaa33):xtic(1) with boxes lc rgb variable, \
     clean_e with lines dt 2 lc rgb "gray30"
unset multiplot
