import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('agents_core', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='AgentRunAttempt',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveSmallIntegerField()),
                ('worker', models.CharField(help_text='host:pid of the process that executed it', max_length=200)),
                ('started_at', models.DateTimeField()),
                ('ended_at', models.DateTimeField(blank=True, null=True)),
                ('outcome', models.CharField(choices=[('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('retried', 'Retried'), ('worker_lost', 'Worker Lost')], default='running', max_length=12)),
                ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attempt_history', to='agents_core.agentrun')),
            ],
            options={
                'ordering': ['run', 'number'],
                'constraints': [models.UniqueConstraint(fields=('run', 'number'), name='one_attempt_per_run_number')],
            },
        ),
    ]
