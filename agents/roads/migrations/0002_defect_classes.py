"""Two defect classes, "pothole" and "crack": stored class names (a model's own, such as "Pothole" or
"D00") become one of the two, as vision.classes maps them; names of neither are lower-cased and kept. The
same for the class of each stored detection, and per-class open counts on each segment's condition.

The mapping is written out here (not imported) so the migration stays what it was when it ran."""

from django.db import migrations, models


def _canonical_sql(expr: str) -> str:
    key = f"lower(trim({expr}))"
    return (f"CASE WHEN {key} = 'd40' OR {key} LIKE '%pothole%' THEN 'pothole'"
            f" WHEN {key} IN ('d00', 'd10', 'd20') OR {key} LIKE '%crack%' THEN 'crack' ELSE {key} END")


DEFECTS = f"UPDATE agent_roads_defect SET class_name = {_canonical_sql('class_name')}"
DETECTIONS = f"""
UPDATE agent_roads_inspectionphoto p SET detections = (
    SELECT jsonb_agg(CASE WHEN jsonb_typeof(e) = 'object' AND e ? 'class'
                          THEN jsonb_set(e, '{{class}}', to_jsonb({_canonical_sql("e->>'class'")})) ELSE e END
                     ORDER BY i)
    FROM jsonb_array_elements(p.detections) WITH ORDINALITY AS t(e, i))
WHERE jsonb_typeof(p.detections) = 'array' AND jsonb_array_length(p.detections) > 0
"""
CONDITION_COUNTS = """
UPDATE agent_roads_segmentcondition c SET
    open_potholes = (SELECT count(*) FROM agent_roads_defect d WHERE d.segment_id = c.segment_id
                     AND d.status IN ('open', 'ordered') AND d.class_name = 'pothole'),
    open_cracks = (SELECT count(*) FROM agent_roads_defect d WHERE d.segment_id = c.segment_id
                   AND d.status IN ('open', 'ordered') AND d.class_name = 'crack')
"""


class Migration(migrations.Migration):

    dependencies = [
        ('agent_roads', '0001_initial'),
    ]

    operations = [
        migrations.RunSQL(DEFECTS, migrations.RunSQL.noop),
        migrations.RunSQL(DETECTIONS, migrations.RunSQL.noop),
        migrations.AddField(
            model_name='segmentcondition',
            name='open_cracks',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='segmentcondition',
            name='open_potholes',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunSQL(CONDITION_COUNTS, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name='defect',
            name='class_name',
            field=models.CharField(choices=[('pothole', 'pothole'), ('crack', 'crack')], max_length=60),
        ),
    ]
