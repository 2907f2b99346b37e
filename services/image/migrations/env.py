from services.common.migrations import run_env
from services.image.models import Base

run_env(Base.metadata)
