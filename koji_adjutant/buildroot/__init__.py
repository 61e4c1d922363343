"""The buildroot engine: every input of a buildroot (spec.py), the files that set it up
(render.py, templates/), the images the package manager makes (provision.py), what a
package asks for (requirements.py, resolve.py), and the phases that build (phase.py, runner.py)."""
