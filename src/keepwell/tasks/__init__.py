"""Tasks for staff about customers, and the rules that assign them an owner.

See ``docs/tasks.md``. Services: :mod:`keepwell.tasks.service` (tasks) and
:mod:`keepwell.tasks.assignment` (assignment rules, bulk owner assignment).
"""
