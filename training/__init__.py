"""Training and evaluation on EMOTIC: the ablation study (clean, CCIM-style, CLEF-lite, ASL, class-balanced).

Will hold: the EMOTIC and synthetic data sets, losses and task objects per variant, the trainer, metrics
and the ablation table (issue: training/).
"""
