# The blog's figure: per-class mean probability with 2.5-97.5 % whiskers for a
# clean test digit (top) beside the same digit corrupted (bottom), each
# answered through the daemon's path, with the abstain rule's verdict.
# gnuplot -e "dir='build/report'; out='docs/example.png'" docs/example.gp
if (!exists("dir")) dir = 'build/report'
if (!exists("out")) out = 'docs/example.png'
set terminal pngcairo size 900,640 font "sans,10" noenhanced
set output out
info = system(sprintf("cat %s/example.txt", dir))
idx = word(info, 1); lab = word(info, 2); kind = word(info, 3)
set multiplot layout 2,2 columnsfirst margins 0.04,0.98,0.08,0.88 spacing 0.08,0.14 \
    title sprintf("Test image %s (label %s): clean vs %s", idx, lab, kind)
set palette gray
unset colorbox
unset key
set size ratio -1
unset xtics; unset ytics
set xrange [-0.5:27.5]; set yrange [-0.5:27.5]
set title "clean"
plot dir.'/example_clean.mat' matrix with image
set title kind
plot dir.'/example_corrupted.mat' matrix with image
set size noratio
set xtics 1 nomirror; set ytics 0.2 nomirror
set xrange [-0.6:9.6]; set yrange [0:1.05]
set xlabel "class"; set ylabel "probability"
set grid ytics
set style fill solid 0.6 border -1
set boxwidth 0.6
set title sprintf("clean: predicted %s, epistemic %s nats, %s", word(info, 4), word(info, 5), word(info, 8))
plot dir.'/example.tsv' using 1:2 with boxes lc rgb "#4477aa", \
     '' using 1:2:3:4 with yerrorbars lc rgb "black" pt 0 lw 1.5
set title sprintf("%s: predicted %s, epistemic %s nats, %s", kind, word(info, 6), word(info, 7), word(info, 9))
plot dir.'/example.tsv' using 1:5 with boxes lc rgb "#cc6677", \
     '' using 1:5:6:7 with yerrorbars lc rgb "black" pt 0 lw 1.5
unset multiplot
