# Selective prediction: accuracy on the inputs kept when abstaining on the
# most uncertain x %, by epistemic uncertainty and by predictive entropy.
if (!exists("dir")) dir = 'build/report'
if (!exists("out")) out = 'docs/selective.png'
set terminal pngcairo size 760,480 font "sans,10" noenhanced
set output out
set title "Selective prediction: abstain on the most uncertain inputs"
set xlabel "abstained (%)"
set ylabel "accuracy on the rest"
set xrange [0:50]
set yrange [*:1]
set grid
set key bottom right
# the recommended uncertain_threshold abstains on 5 % of clean inputs
set arrow from 5, graph 0 to 5, graph 1 nohead dt 3 lc rgb "gray30"
set label "recommended threshold:\n5 % of clean inputs" at 5.5, graph 0.55 left textcolor rgb "gray30"
plot dir.'/selective.tsv' using ($1*100):2 with lines lw 2 lc rgb "#4477aa" title "clean, by epistemic", \
     '' using ($1*100):3 with lines lw 2 dt 2 lc rgb "#4477aa" title "clean, by entropy", \
     '' using ($1*100):4 with lines lw 2 lc rgb "#cc6677" title "clean + 15 corruptions, by epistemic", \
     '' using ($1*100):5 with lines lw 2 dt 2 lc rgb "#cc6677" title "clean + 15 corruptions, by entropy"
