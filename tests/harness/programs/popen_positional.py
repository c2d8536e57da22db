# runs: 2
"""subprocess.Popen with every argument positional (env included), inside a traced run."""
import os
import subprocess
import sys

from rtrace.core import Document, retriever

CHILD = "import os, sys; print('child sees', os.environ.get('HARNESS_VAR'), sys.argv[1:])"


@retriever(name="Spawner")
def spawner(query):
    env = {**os.environ, "HARNESS_VAR": query}
    # args, bufsize, executable, stdin, stdout, stderr, preexec_fn, close_fds, shell, cwd, env,
    # universal_newlines, startupinfo, creationflags, restore_signals, start_new_session, pass_fds
    p = subprocess.Popen([sys.executable, "-c", CHILD, "a b"], -1, None, None, subprocess.PIPE, None, None,
                         True, False, None, env, True, None, 0, True, False, ())
    out, _ = p.communicate()
    print(out.strip(), p.returncode)
    return [Document(out)]


spawner("positional")
out = subprocess.run([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True,
                     env={"PATH": os.environ.get("PATH", ""), "HARNESS_VAR": "clean-env"}).stdout
print(out.strip())
spawner("again")
