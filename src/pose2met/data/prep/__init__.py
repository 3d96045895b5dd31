"""Converters from public dataset formats into the Pose2Met HDF5 format (see ``docs/datasets.md``).

One module per dataset (``h36m``, ``mpi_inf_3dhp``, ``vid2burn_adl``), each with a ``main(argv)``
that the thin scripts in ``data_prep/`` call; shared plumbing lives in ``common``.
"""
