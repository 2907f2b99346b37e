from services.common.migrations import run_env
from services.scan.models import Base

run_env(Base.metadata)
