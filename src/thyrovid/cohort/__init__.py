"""The cohort: cohort.csv, its schema and checks (`schema`), importers from annotation tools
(`importers`) and the patient-grouped split assignment (`splits`).
"""
