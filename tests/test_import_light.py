import subprocess
import sys


def test_import_zoo_does_not_need_torch():
    code = "import sys; sys.modules['torch'] = None; import zoo; print(zoo.__version__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_import_zoo_does_not_import_torch():
    code = "import sys, zoo; assert 'torch' not in sys.modules, 'import zoo pulled in torch'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
