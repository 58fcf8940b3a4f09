# Per corruption, through the daemon's path (first bar: clean): accuracy
# beside the model alone on pixel/255, the share of wrong answers flagged
# uncertain, the mean 95 % interval width of the predicted class and the
# mean epistemic uncertainty. Data: bnn-robust --plots (corruptions.tsv).
if (!exists("dir")) dir = 'build/report'
if (!exists("out")) out = 'docs/corruptions.png'
set terminal pngcairo size 1000,1150 font "sans,10" noenhanced
set output out
set multiplot layout 4,1 margins 0.08,0.95,0.09,0.95 spacing 0,0.035 \
    title "MNIST-C-style corruptions through the daemon's path (first bar: clean)"
set style fill solid 0.6 border -1
set grid ytics
set xrange [-0.6:15.6]
set format x ""
set ylabel "accuracy"
set yrange [0:1.05]
set key top right horizontal opaque box samplen 1.5
set boxwidth 0.38
clean_w = real(system(sprintf("awk 'NR==2{print $6}' %s/corruptions.tsv", dir)))
clean_e = real(system(sprintf("awk 'NR==2{print $9}' %s/corruptions.tsv", dir)))
plot dir.'/corruptions.tsv' using ($0 - 0.2):2 with boxes lc rgb "#4477aa" title "daemon's path", \
     '' using ($0 + 0.2):3 with boxes lc rgb "#bbbbbb" title "model alone (pixel/255)", \
     0.85 with lines dt 2 lc rgb "gray30" title "target 85 %"
set ylabel "share"
plot dir.'/corruptions.tsv' using ($0 - 0.2):11 with boxes lc rgb "#228833" title "wrong answers flagged", \
     '' using ($0 + 0.2):10 with boxes lc rgb "#ccbb44" title "all answers flagged", \
     0.90 with lines dt 2 lc rgb "gray30" title "target 90 %"
unset key
set boxwidth 0.7
set ylabel "interval width"
set autoscale y; set yrange [0:*]
plot dir.'/corruptions.tsv' using 0:6:($0 == 0 ? 0x228833 : 0xcc6677) with boxes lc rgb variable, \
     clean_w with lines dt 2 lc rgb "gray30"
set ylabel "epistemic (nats)"
set format x "%g"
set xtics rotate by -35 left
plot dir.'/corruptions.tsv' using 0:9:($0 == 0 ? 0x228833 : 0xddaa33):xtic(1) with boxes lc rgb variable, \
     clean_e with lines dt 2 lc rgb "gray30"
unset multiplot
