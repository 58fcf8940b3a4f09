# Selective prediction through the daemon's path: accuracy on the answers
# kept when abstaining on the most uncertain x %, by epistemic uncertainty
# and by predictive entropy; left the clean test set, right clean + the 15
# corrupted sets pooled. The dotted line: the share of clean test digits the
# weights' policy flags (policy.txt, written by bnn-robust --plots).
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
flagged = real(system(sprintf("awk '{print $1}' %s/policy.txt", dir)))
set arrow 1 from flagged, graph 0 to flagged, graph 1 nohead dt 3 lc rgb "gray30"
set label 1 sprintf("the policy flags\n%.1f %% of clean digits", flagged) at flagged + 1, graph 0.5 left textcolor rgb "gray30"
plot dir.'/selective.tsv' using ($1*100):2 with lines lw 2 lc rgb "#4477aa" title "by epistemic", \
     '' using ($1*100):3 with lines lw 2 dt 2 lc rgb "#cc6677" title "by entropy"
unset arrow 1
unset label 1
set title "clean + 15 corrupted sets, pooled"
plot dir.'/selective.tsv' using ($1*100):4 with lines lw 2 lc rgb "#4477aa" title "by epistemic", \
     '' using ($1*100):5 with lines lw 2 dt 2 lc rgb "#cc6677" title "by entropy"
unset multiplot
