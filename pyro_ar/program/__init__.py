"""The ``pyro-ar`` program, built on the library: the command line (:mod:`.cli`), the
training loop (:mod:`.training`), plots (:mod:`.plots`), run directories (:mod:`.run_dir`),
data files (:mod:`.data_files`) and the embedded data sets (:mod:`.datasets`).

Nothing in the library core (``conditionals``, ``nn``, ``distributions``, ``kl``,
``reparam``, ``checkpoint``) imports this package.
"""
