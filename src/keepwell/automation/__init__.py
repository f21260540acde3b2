"""Alert rules, playbooks and automation runs.

``keepwell.automation.service.run`` evaluates the rules and advances journeys;
``keepwell.automation.scheduler.run_scheduler`` runs it in a loop; definitions are validated
by ``keepwell.automation.definitions``. See ``docs/automation.md``.
"""
