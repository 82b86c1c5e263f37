"""Reports for supervisors: KPI definitions (kpis.py), the rollups they read (rollup.py),
the dashboard (views.py), the audit trail (audit.py) and satisfaction surveys (csat.py).
"""
