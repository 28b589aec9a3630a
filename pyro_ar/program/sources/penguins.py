"""``--data penguins``: the Palmer penguins, a table of 344 penguins with 8 mixed columns.

species (Adelie, Chinstrap, Gentoo), island (Biscoe, Dream, Torgersen), bill_length_mm,
bill_depth_mm, flipper_length_mm, body_mass_g, sex (female, male; 11 missing) and year
(2007-2009) of adult penguins near Palmer Station, Antarctica. Data: Gorman KB, Williams TD,
Fraser WR (2014), PLoS ONE 9(3): e90081, doi:10.1371/journal.pone.0090081, collected by
Dr. Kristen Gorman and the Palmer Station LTER; released under CC0 (public domain) as the
R package ``palmerpenguins`` by Allison Horst, Alison Hill and Kristen Gorman. The file is
``palmerpenguins/data/penguins.csv`` of the PyPI wheel ``palmerpenguins`` 0.1.6, unchanged.

Read as a table (:mod:`pyro_ar.program.tables`): species, island, sex and year are
categorical or binary, the four measurements real; the 11 rows with a missing entry are
dropped (333 complete rows).
"""

from __future__ import annotations

from importlib import resources

from pyro_ar.program.data_files import RawSource, read_table_source, register_source

__all__ = ["load_penguins"]


def load_penguins() -> RawSource:
    """The penguins table as a :class:`RawSource` of text cells (see :func:`read_table_source`)."""
    with resources.as_file(resources.files("pyro_ar.program").joinpath("data", "penguins.csv")) as path:
        return read_table_source(path, name="penguins")


register_source("penguins", load_penguins, table=True)
