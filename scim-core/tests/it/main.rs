mod patch;
