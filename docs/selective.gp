# Selective prediction: accuracy on the inputs kept when abstaining on the
# most uncertain x %, by epistemic uncertainty and by predictive entropy;
# left the clean test set, right clean + the 15 corrupted sets pooled.
if (!exists("dir")) dir = 'build/report'
if (!exists("out")) out = 'docs/selective.png'
set terminal pngcairo size 1000,460 font "sans,10" noenhanced
set output out
set multiplot layout 1,2 title "Selective prediction: abstain on the most uncertain inputs"
set xlabel "abstained (%)"
set ylabel "accuracy on the rest"
set xrange [0:50]
set grid
set key bottom right
set title "clean MNIST test set"
# the recommended uncertain_threshold abstains on 5 % of clean inputs
set arrow 1 from 5, graph 0 to 5, graph 1 nohead dt 3 lc rgb "gray30"
set label 1 "recommended threshold:\n5 % of clean inputs" at 6, graph 0.5 left textcolor rgb "gray30"
plot dir.'/selective.tsv' using ($1*100):2 with lines lw 2 lc rgb "#4477aa" title "by epistemic", \
     '' using ($1*100):3 with lines lw 2 dt 2 lc rgb "#cc6677" title "by entropy"
unset arrow 1
unset label 1
set title "clean + 15 corrupted sets, pooled"
plot dir.'/selective.tsv' using ($1*100):4 with lines lw 2 lc rgb "#4477aa" title "by epistemic", \
     '' using ($1*100):5 with lines lw 2 dt 2 lc rgb "#cc6677" title "by entropy"
unset multiplot
