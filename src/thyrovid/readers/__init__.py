"""The reader study, `thyrovid readers`: the command and its statistics (`readers`), readers.csv
and the model's files (`inputs`), Table 4 and Fig. 7 (`table4`).
"""
