"""Prediction models of Atlas Énergie 74: DPE label, passoire, consumption, cost.

Modules: `features` (inputs a household knows), `train` (fit, compare, report),
`predict` (validation and fast inference), `registry` (persistence, loading at
startup, `flask ml` commands), `evaluate` (metrics on any DPE file).
"""
