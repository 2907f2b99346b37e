from services.common.migrations import run_env
from services.my.models import Base

run_env(Base.metadata)
