"""devster.py: a project built in Python, with one worker per queue generated in a loop.

devster runs this file and uses the ``project`` it defines: here a function that receives
the variables (the process environment) and returns a ``Project`` built with the same classes
a devster.yaml validates into.  Try:

    devster graph
    QUEUES=mail,sms devster graph
    WITH_STATS=1 devster up --no-tui
"""

from __future__ import annotations

from collections.abc import Mapping

from devster_tui import Dependency, Observer, Project, RestartPolicy, StdinSpec, Task


def project(environ: Mapping[str, str]) -> Project:
    """Build the project: a producer, one worker per queue, optional stats."""
    queues = [q for q in environ.get("QUEUES", "mail,billing,reports").split(",") if q]
    tasks: dict[str, Task] = {
        "producer": Task(
            description="prints one job per line as QUEUE:PAYLOAD",
            cmd=["python3", "producer.py", *queues],
            env={"PRODUCER_INTERVAL": environ.get("PRODUCER_INTERVAL", "0.5")},
            restart=RestartPolicy(policy="on-failure"),
        ),
    }
    for queue in queues:
        # Each worker reads the producer's stdout on its stdin and keeps its own queue's jobs.
        tasks[f"worker-{queue}"] = Task(
            description=f"handles the {queue} queue",
            cmd=["python3", "worker.py", queue],
            stdin=StdinSpec(from_="producer.stdout"),
            depends_on={"producer": Dependency(condition="started")},
            restart=RestartPolicy(policy="always"),
        )
    observers: dict[str, Observer] = {}
    if environ.get("WITH_STATS"):
        observers["every-5s"] = Observer.model_validate({"interval": {"every": "5s"}})
        tasks["stats"] = Task(
            description="counts the jobs handled so far (every 5 seconds)",
            kind="job",
            cmd="ls jobs-done 2>/dev/null | wc -l",
            triggers=["every-5s"],
            autostart=False,
        )
    return Project(project="python-config", observers=observers, tasks=tasks)
