"""Named data sets of the ``pyro-ar`` program beyond the built-in digits and Fashion-MNIST.

Each data set is one module here that ends with
:func:`pyro_ar.program.data_files.register_source`; every module is imported when a source
is first looked up, so a new file is picked up without editing a list.
"""
