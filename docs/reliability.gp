# Reliability diagram of the clean test set through the daemon's path: accuracy per confidence bin
# (15 equal-width bins, as the ECE) against the diagonal; counts on the right.
if (!exists("dir")) dir = 'build/report'
if (!exists("out")) out = 'docs/reliability.png'
set terminal pngcairo size 720,560 font "sans,10" noenhanced
set output out
ece = real(system(sprintf("awk 'NR==2{print $5}' %s/corruptions.tsv", dir)))
set title sprintf("Reliability diagram, clean MNIST test set: ECE %.2f %%", 100 * ece)
set xlabel "confidence (max mean probability), 15 bins"
set ylabel "accuracy in bin"
set y2label "images in bin (log)"
set xrange [0:1]; set yrange [0:1]
set logscale y2; set y2range [0.8:20000]
set y2tics nomirror; set ytics nomirror
set key top left inside opaque box samplen 2
set style fill solid 0.5 border -1
set grid
plot dir.'/reliability.tsv' using (($1+$2)/2):($3 > 0 ? $5 : 1/0):(1.0/15) with boxes lc rgb "#4477aa" title "accuracy", \
     '' using ($3 > 0 ? $4 : 1/0):($3 > 0 ? $4 : 1/0) with linespoints lc rgb "#cc6677" pt 7 ps 0.6 title "mean confidence", \
     x with lines dt 2 lc rgb "gray40" title "perfect calibration", \
     '' using (($1+$2)/2):($3 > 0 ? $3 : 1/0) axes x1y2 with points pt 2 lc rgb "black" title "count"
