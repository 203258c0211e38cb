"""Reports on analyses: figures (``plots``, also ``hts.plot``), series statistics (``compare``, ``stats``) and
self-contained HTML pages (``html``). Nothing here computes a spectral metric; matplotlib is imported by the
plot functions on first use."""
