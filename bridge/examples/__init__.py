"""Runnable examples, installed with the package: ``awkward-bridge demo`` runs the seed talk's
(``seed_path_length``); ``python -m bridge.examples.hzz_four_lepton`` analyses real collider
events (needs ``pip install 'awkward-bridge[examples]'``)."""
