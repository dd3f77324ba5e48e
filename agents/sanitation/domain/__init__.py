"""The sanitation agent's pure domain core (no Django): how fast each bin fills (`fill`), which bins a day's
plan must or may visit (`choice`), the fixed-schedule baseline (`baseline`) and its replay on given days'
fills (`counterfactual`), the city's routing instance built on top of `agents.sanitation.vrp` (`routing`),
a stochastic fill simulator (`simulation`) used by the demo data and the benchmark, and the
planner that puts them together for a day (`planner`: the problem, its plan, checked, and its KPIs).

Times inside the core are *local days*: the proleptic Gregorian ordinal of the city's local date plus the
fraction of the day (`local_days`), so weekday splits follow the city's calendar without time-zone objects
in the inner loops."""
