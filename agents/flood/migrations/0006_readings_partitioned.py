"""The readings table partitioned by month (issue 18: 93 GB a year of minute data; retention by dropping a
partition). The table is rewritten: a partitioned table with the same columns, primary key (series_id,
time) and BRIN index on time (declared on the parent: each partition has its own), a DEFAULT partition for
readings of months without a partition (history from any year), one partition per UTC month holding
readings plus the current and next month, the readings moved in time order (the BRIN index stays tight),
and the names swapped. The indexes are built after the copy (one sort each, not a row at a time). The
model's state does not change: Django sees the same table.

Plain SQL, frozen here rather than calling city_ops.core.partitions (a migration must do tomorrow what it
did today); the months ahead after this are the beat job's (`readings_partitions_maintain`). On a large
table this holds the table locked for the whole copy: plan a maintenance window (docs/deploy.md)."""

from django.db import migrations

MONTHS = """
DO $$
DECLARE
    m timestamp;
BEGIN
    FOR m IN
        SELECT DISTINCT date_trunc('month', time AT TIME ZONE 'UTC') FROM agent_flood_reading_plain
        UNION SELECT date_trunc('month', now() AT TIME ZONE 'UTC')
        UNION SELECT date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month'
    LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF agent_flood_reading FOR VALUES FROM (%L) TO (%L)',
                       'agent_flood_reading_p' || to_char(m, 'YYYYMM'),
                       m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC');
    END LOOP;
END $$;
"""

FORWARD = [
    "ALTER TABLE agent_flood_reading RENAME TO agent_flood_reading_plain",
    "ALTER INDEX agent_flood_reading_pkey RENAME TO agent_flood_reading_plain_pkey",
    "ALTER INDEX flood_reading_time_brin RENAME TO flood_reading_plain_time_brin",
    "CREATE TABLE agent_flood_reading (LIKE agent_flood_reading_plain) PARTITION BY RANGE (time)",
    "CREATE TABLE agent_flood_reading_default PARTITION OF agent_flood_reading DEFAULT",
    MONTHS,
    "INSERT INTO agent_flood_reading SELECT * FROM agent_flood_reading_plain ORDER BY time, series_id",
    "DROP TABLE agent_flood_reading_plain",
    "ALTER TABLE agent_flood_reading ADD CONSTRAINT agent_flood_reading_pkey PRIMARY KEY (series_id, time)",
    "CREATE INDEX flood_reading_time_brin ON agent_flood_reading USING brin (time) WITH (pages_per_range = 32)",
    "ANALYZE agent_flood_reading",
]

# Back to one table (its partitions dropped with it), in time order.
REVERSE = [
    "CREATE TABLE agent_flood_reading_plain (LIKE agent_flood_reading)",
    "INSERT INTO agent_flood_reading_plain SELECT * FROM agent_flood_reading ORDER BY time, series_id",
    "DROP TABLE agent_flood_reading",
    "ALTER TABLE agent_flood_reading_plain RENAME TO agent_flood_reading",
    "ALTER TABLE agent_flood_reading ADD CONSTRAINT agent_flood_reading_pkey PRIMARY KEY (series_id, time)",
    "CREATE INDEX flood_reading_time_brin ON agent_flood_reading USING brin (time) WITH (pages_per_range = 32)",
    "ANALYZE agent_flood_reading",
]


class Migration(migrations.Migration):

    dependencies = [
        ('agent_flood', '0005_series_rule_statistic'),
    ]

    operations = [
        migrations.RunSQL(FORWARD, reverse_sql=REVERSE),
    ]
