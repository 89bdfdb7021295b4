"""End-to-end demonstrations shipped with chorus (``chorus demo``, ``chorus distill-demo``):
each runs the library's workflows on generated data and writes a report. Nothing in the
library imports from here."""
