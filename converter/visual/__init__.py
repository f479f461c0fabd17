"""Ways to see a model and a conversion.

- :mod:`converter.visual.tensorboard`: an IR model as a TensorBoard graph
  (``inspect --tensorboard``, ``convert --tensorboard``);
- :mod:`converter.visual.html_report`: a parity report as one self-contained
  HTML file (``validate --report``);
- :mod:`converter.visual.progress`: progress display for long stages, on
  terminals only.

Import the submodule you need; importing this package loads nothing else.
"""
