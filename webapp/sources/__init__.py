"""Clients of the open-data services: ADEME and Enedis (Data Fair, ODS), data.gouv."""
