-- Optuna's tables (studies, trials, alembic_version) must not share the leaderboard's database.
CREATE DATABASE studies OWNER medarena;
CREATE DATABASE mlflow OWNER medarena;
