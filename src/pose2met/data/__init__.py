"""Data: the Pose2Met HDF5 format, clip datasets, DataModules and the SynthMet generator."""
