# Rotated MNIST test digits, 0..180 degrees, through the daemon's path:
# accuracy (beside the model alone), ECE and share flagged (left), mean
# epistemic uncertainty (right) against the angle.
if (!exists("dir")) dir = 'build/report'
if (!exists("out")) out = 'docs/rotation.png'
set terminal pngcairo size 900,480 font "sans,10" noenhanced
set output out
set title "Rotated MNIST test digits through the daemon's path"
set xlabel "rotation (degrees, counter-clockwise)"
set ylabel "accuracy, ECE, share flagged" textcolor rgb "#4477aa"
set y2label "mean epistemic (nats)" textcolor rgb "#cc6677"
set xrange [0:180]; set xtics 15
set yrange [0:1]; set ytics nomirror
set y2range [0:*]; set y2tics nomirror
set grid xtics ytics
set key outside right top vertical
plot dir.'/rotation.tsv' using 1:2 with linespoints pt 7 lw 2 lc rgb "#4477aa" title "accuracy", \
     '' using 1:8 with linespoints pt 4 dt 3 lc rgb "gray50" title "accuracy, model alone", \
     '' using 1:3 with linespoints pt 6 dt 2 lc rgb "#4477aa" title "ECE", \
     '' using 1:9 with linespoints pt 8 lc rgb "#228833" title "flagged", \
     '' using 1:4 axes x1y2 with linespoints pt 5 lw 2 lc rgb "#cc6677" title "epistemic"
