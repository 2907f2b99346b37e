from services.common.migrations import run_env
from services.location.models import Base

run_env(Base.metadata)
