# Out of distribution: predictive entropy and epistemic uncertainty of the
# MNIST test set against Fashion-MNIST test images.
if (!exists("dir")) dir = 'build/report'
if (!exists("out")) out = 'docs/ood.png'
set terminal pngcairo size 1000,440 font "sans,10" noenhanced
set output out
set multiplot layout 1,2 title "MNIST (in distribution) vs Fashion-MNIST (out of distribution)"
set style fill transparent solid 0.45 border -1
set ylabel "fraction of images"
set logscale y; set yrange [1e-4:1]
set grid
set key top right
set xlabel "predictive entropy (nats)"
set xrange [0:2.31]
bw = 2.302585 / 40
set boxwidth bw
plot dir.'/ood_hist.tsv' using 1:($2 > 0 ? $2 : 1/0) with boxes lc rgb "#4477aa" title "MNIST", \
     '' using 1:($3 > 0 ? $3 : 1/0) with boxes lc rgb "#cc6677" title "Fashion-MNIST"
set xlabel "epistemic = mutual information (nats)"
set autoscale x; set xrange [0:*]
set boxwidth
plot dir.'/ood_hist.tsv' using 4:($5 > 0 ? $5 : 1/0) with boxes lc rgb "#4477aa" title "MNIST", \
     '' using 4:($6 > 0 ? $6 : 1/0) with boxes lc rgb "#cc6677" title "Fashion-MNIST"
unset multiplot
