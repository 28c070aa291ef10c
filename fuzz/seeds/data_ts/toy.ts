# toy
@problemName toy
@timeStamps false
@univariate false
@dimensions 2
@equalLength true
@seriesLength 3
@classLabel true walk run
@data
1,2,3:4,5,6:walk
0.1,0.2,0.3:0.4,0.5,0.6:run
