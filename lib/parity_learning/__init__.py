"""Learning without exact backpropagation, on sparse parity.

The library behind the thesis companion book: data (sparse parity and digit
parity), multilayer perceptrons with hand-written gradients, learning rules
(backpropagation, feedback alignment, DFA), lazy models, seven optimizers,
training, sweeps, and the figure and table helpers the chapters use.
"""

__version__ = "0.1.0"
