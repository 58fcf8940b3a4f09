# The 15 MNIST-C-style corruptions on the first 8 test digits (top row clean).
if (!exists("dir")) dir = 'build/report'
if (!exists("out")) out = 'docs/gallery.png'
set terminal pngcairo size 560,1000 font "sans,10" noenhanced
set output out
set title "MNIST-C-style corruptions (bnn-corrupt), first 8 test digits"
set palette gray
unset colorbox
unset key
set size ratio -1
set lmargin 14
unset xtics
names = "clean shot_noise impulse_noise glass_blur motion_blur shear scale rotate brightness translate stripe fog spatter dotted_line zigzag canny_edges"
set ytics scale 0 ()
do for [i=1:16] { set ytics add (word(names, i) (16 - i) * 29 + 13.5) }
set xrange [-0.5:230.5]; set yrange [-0.5:462.5]
plot dir.'/gallery.mat' matrix with image
