"""The applications, on top of every layer: the tour (``zoo tour``, :mod:`apps.tour`), the command line
(``zoo list | fit | tour``, :mod:`apps.cli`) and report rendering (:mod:`apps.report`).

They use ``zoo`` (models, data), ``guides`` and ``inference`` (algorithms); nothing below imports them.
"""
