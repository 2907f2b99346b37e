from services.common.migrations import run_env
from services.info.models import Base

run_env(Base.metadata)
