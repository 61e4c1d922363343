"""Write synthetic repo metadata of Fedora's size and shape, without any RPM. Not a test.

For the benchmark of the group layer's cache key (bench/repo_key.py): the key
reads each repo's primary metadata, and a Fedora repo holds about 70,000
packages, whose primary.xml.gz is some 15-20 MB (a few hundred MB once
decompressed). Building that many RPMs would take hours; the key needs only
their metadata.

    python bench/make_repo_metadata.py OUTDIR [--packages 70000] [--seed 1]

OUTDIR/repodata/ gets repomd.xml, primary.xml.gz, filelists.xml.gz and
other.xml.gz (named <sha256>-<type>.xml.gz as Fedora's are), written by
createrepo_c's own Python bindings, so the metadata is createrepo's format and
repomd.xml's checksums and sizes are right by construction. There are no
packages: the hrefs point at RPMs that do not exist.

Fedora's shape: source packages are drawn from Fedora's families in roughly
their shares of Everything (Rust crates with their feature subpackages, Python,
Perl, TeX Live, Go, Haskell, MinGW, fonts and langpacks, and C/C++ libraries
and programs with -libs, -devel and -doc), each binary package with the
provides and requires such a package has (sonames, pkgconfig(), perl(),
python3.12dist(), crate(), golang(), tex()), its files (/usr/bin, /etc and the
rest; primary keeps only the first two, as createrepo does), a summary and a
description of Fedora's length, and a changelog entry or two. Everything is
determined by --seed; repomd.xml's timestamps are fixed, so the same seed and
count write the same bytes.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from pathlib import Path

import createrepo_c as cr

EPOCH = 1714000000            # repomd's revision and every file's timestamp
DIST = "fc41"
#: words of the summaries and descriptions
WORDS = (
    "library", "tool", "utility", "support", "module", "package", "files", "development", "data", "the",
    "for", "and", "with", "of", "a", "to", "in", "is", "that", "provides", "implementation", "command",
    "line", "interface", "bindings", "python", "rust", "crate", "perl", "fast", "simple", "small", "parser",
    "format", "network", "protocol", "client", "server", "plugin", "extension", "documentation", "headers",
    "static", "shared", "runtime", "test", "framework", "font", "language", "translations", "Go", "TeX",
    "LaTeX", "style", "macros", "system", "file", "image", "audio", "video", "graphics", "terminal",
    "configuration", "this", "an", "which", "can", "be", "used", "by", "applications", "programs", "XML",
    "JSON", "HTTP", "TLS", "compression", "archive", "database", "SQL", "GNOME", "KDE", "Qt", "GTK",
    "written", "on", "top", "it", "also", "contains", "are", "from", "other", "needed", "build", "using",
    "allows", "users", "manage", "high", "performance", "portable", "cross-platform", "generic", "API",
)
SYLLABLES = (
    "ab", "ac", "al", "an", "ar", "at", "ba", "be", "bi", "bo", "ca", "ce", "ci", "co", "cu", "da", "de",
    "di", "do", "el", "em", "en", "er", "es", "et", "fa", "fi", "fo", "ga", "ge", "gi", "go", "ha", "he",
    "hi", "ho", "id", "il", "im", "in", "io", "is", "it", "ja", "ka", "ke", "ki", "ko", "la", "le", "li",
    "lo", "lu", "ma", "me", "mi", "mo", "mu", "na", "ne", "ni", "no", "nu", "ob", "od", "ol", "om", "on",
    "op", "or", "os", "ot", "pa", "pe", "pi", "po", "pu", "qu", "ra", "re", "ri", "ro", "ru", "sa", "se",
    "si", "so", "su", "ta", "te", "ti", "to", "tu", "ul", "um", "un", "ur", "us", "va", "ve", "vi", "vo",
    "wa", "we", "xe", "xi", "ya", "yo", "za", "ze", "zi", "zo",
)
#: (family, share of Fedora's source packages), roughly as in Everything x86_64
FAMILIES = (
    ("rust", 0.14), ("python", 0.13), ("perl", 0.11), ("texlive", 0.06), ("golang", 0.08),
    ("ghc", 0.02), ("mingw", 0.02), ("fonts", 0.03), ("langpack", 0.01), ("nodejs", 0.02),
    ("R", 0.01), ("php", 0.01), ("ocaml", 0.01), ("c", 0.34),
)
LICENSES = ("MIT", "GPL-2.0-or-later", "LGPL-2.1-or-later", "Apache-2.0", "BSD-3-Clause", "MIT OR Apache-2.0",
            "GPL-3.0-or-later", "LPPL-1.3c", "OFL-1.1")
LIBC = "libc.so.6(GLIBC_2.34)(64bit)"
GLIBC_SYMBOLS = tuple(f"libc.so.6(GLIBC_{v})(64bit)" for v in ("2.2.5", "2.3", "2.3.4", "2.4", "2.7", "2.14", "2.17",
                                                              "2.25", "2.28", "2.32", "2.33", "2.38"))
COMMON_C_REQUIRES = ("rtld(GNU_HASH)", "libc.so.6()(64bit)", LIBC, "libm.so.6()(64bit)",
                     "libstdc++.so.6()(64bit)", "libgcc_s.so.1()(64bit)", "libz.so.1()(64bit)",
                     "libssl.so.3()(64bit)", "libcrypto.so.3()(64bit)", "libglib-2.0.so.0()(64bit)")

Dep = tuple  # (name, flags, epoch, ver, rel, pre): createrepo_c's dependency tuple


class Generator:
    """The packages of one repo, drawn from one seeded random stream."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.names: set[str] = set()
        self.sonames: list[str] = []     # libraries made so far, for later packages to require
        self.provided: dict[str, list[str]] = {"crate": [], "python": [], "perl": []}  # likewise, by family
        self.packages_made: list[str] = []
        self.source: dict = {}           # what the subpackages of the current source package share

    def word(self, low: int = 2, high: int = 4) -> str:
        return "".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.randint(low, high)))

    def unique(self, make) -> str:
        while True:
            name = make()
            if name not in self.names:
                self.names.add(name)
                return name

    def text(self, words: int) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(words))

    def version(self) -> str:
        rng = self.rng
        return f"{rng.randint(0, 12)}.{rng.randint(0, 40)}.{rng.randint(0, 20)}" if rng.random() < 0.8 \
            else f"{rng.randint(0, 3)}.{rng.randint(0, 9)}"

    def sources(self):
        """Endless source packages: (family, base name, version) in Fedora's shares."""
        families, weights = zip(*FAMILIES)
        while True:
            family = self.rng.choices(families, weights)[0]
            yield family, self.source_name(family), self.version()

    def source_name(self, family: str) -> str:
        word = self.word
        makers = {
            "rust": lambda: f"rust-{word()}{self.rng.choice(['', '-' + word(1, 2), '_' + word(1, 2)])}",
            "python": lambda: f"python-{word()}{self.rng.choice(['', '-' + word(1, 3)])}",
            "perl": lambda: "perl-" + "-".join(word(1, 3).capitalize() for _ in range(self.rng.randint(1, 3))),
            "texlive": lambda: f"texlive-{word()}",
            "golang": lambda: f"golang-github-{word(1, 3)}-{word()}",
            "ghc": lambda: f"ghc-{word()}",
            "mingw": lambda: f"mingw-{word()}",
            "fonts": lambda: f"google-noto-{word()}-fonts",
            "langpack": lambda: f"langpacks-{word(1, 2)}",
            "nodejs": lambda: f"nodejs-{word()}",
            "R": lambda: f"R-{word().capitalize()}",
            "php": lambda: f"php-{word(1, 2)}-{word()}",
            "ocaml": lambda: f"ocaml-{word()}",
            "c": lambda: word(2, 5),
        }
        return self.unique(makers[family])

    def binaries(self, family: str, source: str, version: str) -> list[cr.Package]:
        """The binary packages one source package builds, Fedora-style: one release, build time,
        URL, license and description (and so the one SRPM) for all of them."""
        rng = self.rng
        self.source = {
            "release": f"{rng.randint(1, 20)}.{DIST}", "time_build": EPOCH - rng.randint(0, 400 * 86400),
            "url": f"https://github.com/{self.word(1, 3)}/{source}",
            "license": rng.choice(LICENSES), "description": self.text(rng.randint(15, 80)).capitalize() + ".",
        }
        self.source["sourcerpm"] = f"{source}-{version}-{self.source['release']}.src.rpm"
        base = source.split("-", 1)[1] if family in ("rust", "python", "ghc", "mingw", "ocaml") else source
        if family == "rust":
            features = [f"+{self.word(1, 2)}" for _ in range(rng.choice((0, 0, 1, 2, 3, 5)))]
            return [self.rust(source, base, version, suffix) for suffix in ["", "+default", *features]]
        if family == "python":
            packages = [self.python(f"python3-{base}", base, version)]
            self.provided["python"].append(base)
            if rng.random() < 0.15:
                packages.append(self.package(f"python-{base}-doc", version, noarch=True, files=self.docs(base)))
            return packages
        if family == "perl":
            module = "::".join(source[len("perl-"):].split("-"))
            self.provided["perl"].append(module)
            return [self.package(source, version, noarch=rng.random() < 0.85,
                                 provides=[(f"perl({module})", "EQ", "0", version, None, False)] +
                                 [(f"perl({module}::{self.word(1, 3).capitalize()})", None, None, None, None, False)
                                  for _ in range(rng.randint(0, 4))],
                                 requires=["perl(:MODULE_COMPAT_5.40.0)", "perl(strict)", "perl(warnings)",
                                           "perl(Carp)", "perl(Exporter)"][:rng.randint(2, 5)] +
                                 [f"perl({dep})" for dep in self.popular("perl", 8)],
                                 files=[f"/usr/share/perl5/vendor_perl/{module.replace('::', '/')}.pm",
                                        f"/usr/share/man/man3/{module}.3pm.gz"])]
        if family == "texlive":
            return [self.package(source, version, noarch=True,
                                 provides=[(f"tex({self.word()}.sty)", None, None, None, None, False)
                                           for _ in range(rng.randint(1, 6))],
                                 requires=["texlive-base", "texlive-kpathsea", "tex(kvoptions.sty)"] + self.deps(1),
                                 files=[f"/usr/share/texlive/texmf-dist/tex/latex/{base}/{self.word()}.sty"
                                        for _ in range(rng.randint(1, 8))])]
        if family == "golang":
            path = "github.com/" + "/".join(source.split("-")[2:])
            return [self.package(f"{source}-devel", version, noarch=True,
                                 provides=[(f"golang({path}{sub})", "EQ", "0", version, None, False)
                                           for sub in ["", *(f"/{self.word(1, 2)}" for _ in range(rng.randint(0, 8)))]],
                                 requires=["go-filesystem", "golang(golang.org/x/sys/unix)"] + self.deps(3),
                                 files=[f"/usr/share/gocode/src/{path}/{self.word()}.go" for _ in range(8)])]
        if family == "ghc":
            lib = f"libHS{base}-{version}-ghc9.6.6.so()(64bit)"
            return [self.package(source, version, provides=[(lib, None, None, None, None, False)],
                                 requires=["ghc-base", LIBC, "libffi.so.8()(64bit)"], sonames=[lib]),
                    self.package(f"{source}-devel", version, requires=[source, "ghc-compiler"]),
                    self.package(f"{source}-doc", version, noarch=True, files=self.docs(base)),
                    self.package(f"{source}-prof", version, requires=[f"{source}-devel"])]
        if family == "mingw":
            return [self.package(f"mingw{bits}-{base}", version, noarch=True,
                                 provides=[(f"mingw{bits}(lib{base}.dll)", None, None, None, None, False)],
                                 requires=[f"mingw{bits}-crt", f"mingw{bits}-filesystem"],
                                 files=[f"/usr/{'x86_64' if bits == 64 else 'i686'}-w64-mingw32/sys-root/mingw/bin/"
                                        f"lib{base}.dll"]) for bits in (32, 64)]
        if family == "fonts":
            return [self.package(source, version, noarch=True,
                                 provides=[(f"font(noto{base})", None, None, None, None, False),
                                           (f"metainfo({source}.metainfo.xml)", None, None, None, None, False)],
                                 requires=["fonts-filesystem"],
                                 files=[f"/usr/share/fonts/{source}/Noto{base.capitalize()}-{w}.ttf"
                                        for w in ("Regular", "Bold", "Italic")])]
        if family == "langpack":
            lang = source.split("-", 1)[1]
            return [self.package(f"{prefix}{lang}", version, noarch=prefix != "glibc-langpack-",
                                 provides=[(f"locale({lang})", None, None, None, None, False)],
                                 requires=[f"langpacks-core-{lang}"] if prefix == "langpacks-" else [])
                    for prefix in ("langpacks-", "langpacks-core-", "glibc-langpack-", "hunspell-")]
        if family in ("nodejs", "R", "php", "ocaml"):
            return [self.package(source, version, noarch=family != "ocaml",
                                 provides=[(f"{family.lower()}({base})", "EQ", "0", version, None, False)],
                                 requires=[{"nodejs": "nodejs(engine)", "R": "R-core", "php": "php(api) = 20230831",
                                            "ocaml": "ocaml(runtime) = 5.2.0"}[family]] + self.deps(2),
                                 files=[f"/usr/lib/{family.lower()}/{base}/{self.word()}" for _ in range(6)])]
        return self.c_packages(source, version)

    def c_packages(self, name: str, version: str) -> list[cr.Package]:
        """A C/C++ program, and most often its library with -libs and -devel; sometimes -doc."""
        rng = self.rng
        needs_libs = [f"{name}-libs(x86-64) = {version}-{self.source['release']}"]
        programs = [name] + [f"{name}-{self.word(1, 2)}" for _ in range(rng.choice((0, 0, 1, 2, 4)))]
        has_lib = rng.random() < 0.6
        packages = [self.package(
            name, version, requires=(needs_libs if has_lib else []) + self.c_requires(),
            files=[f"/usr/bin/{p}" for p in programs] + [f"/usr/share/man/man1/{p}.1.gz" for p in programs] +
            ([f"/etc/{name}.conf"] if rng.random() < 0.2 else []) + self.docs(name))]
        if has_lib:
            major = rng.randint(0, 9)
            soname = f"lib{name}.so.{major}()(64bit)"
            packages.append(self.package(f"{name}-libs", version, sonames=[soname],
                                         provides=[(soname, None, None, None, None, False)],
                                         requires=self.c_requires(), files=[f"/usr/lib64/lib{name}.so.{major}"]))
            headers = [f"/usr/include/{name}/{self.word()}.h" for _ in range(rng.randint(1, 12))]
            headers += [f"/usr/lib64/pkgconfig/{name}.pc", f"/usr/lib64/lib{name}.so"]
            packages.append(self.package(f"{name}-devel", version,
                                         provides=[(f"pkgconfig({name})", "EQ", "0", version, None, False),
                                                   (f"cmake({name})", None, None, None, None, False)],
                                         requires=needs_libs + ["/usr/bin/pkg-config"],
                                         files=headers))
        if rng.random() < 0.2:
            packages.append(self.package(f"{name}-doc", version, noarch=True,
                                         files=[f"/usr/share/doc/{name}/html/{self.word()}.html" for _ in range(10)]))
        return packages

    def rust(self, source: str, crate: str, version: str, feature: str) -> cr.Package:
        deps = [f"crate({dep}/default) >= {self.rng.randint(0, 2)}.{self.rng.randint(0, 9)}.0"
                for dep in self.popular("crate", 12)]
        if not feature:
            self.provided["crate"].append(crate)
        return self.package(
            f"{source}{feature}-devel", version, noarch=True,
            provides=[(f"crate({crate}/{feature[1:] or 'default'})" if feature else f"crate({crate})",
                       "EQ", "0", version, None, False)],
            requires=["cargo", f"crate({crate}) = {version}"] * bool(feature) + deps,
            files=[] if feature else [f"/usr/share/cargo/registry/{crate}-{version}/{f}"
                                      for f in ("Cargo.toml", "src/lib.rs", "README.md", "LICENSE")])

    def python(self, name: str, module: str, version: str) -> cr.Package:
        return self.package(
            name, version, noarch=self.rng.random() < 0.9,
            provides=[(f"python3.13dist({module})", "EQ", "0", version, None, False),
                      (f"python3dist({module})", "EQ", "0", version, None, False),
                      (f"python-{module}", "EQ", "0", f"{version}-1.{DIST}", None, False)],
            requires=["python(abi) = 3.13"] + [f"python3.13dist({dep}) >= {self.rng.randint(0, 5)}"
                                               for dep in self.popular("python", 8)],
            files=[f"/usr/lib/python3.13/site-packages/{module}/{self.word()}.py" for _ in range(6)] +
            ([f"/usr/bin/{module}"] if self.rng.random() < 0.2 else []))

    def c_requires(self) -> list[str]:
        rng = self.rng
        requires = list(COMMON_C_REQUIRES[:rng.randint(2, len(COMMON_C_REQUIRES))])
        requires += GLIBC_SYMBOLS[:rng.randint(1, len(GLIBC_SYMBOLS))]
        if self.sonames:
            requires += rng.sample(self.sonames, min(len(self.sonames), rng.randint(0, 12)))
        return requires + self.deps(1)

    def popular(self, family: str, most: int) -> list[str]:
        """Up to ``most`` of what the family provided so far, the first ones (the popular, as
        serde or requests are) more often."""
        made, rng = self.provided[family], self.rng
        picks = {rng.choice(made[:max(1, len(made) // 20)] if rng.random() < 0.5 else made)
                 for _ in range(rng.randint(0, most))} if made else set()
        return sorted(picks)

    def deps(self, most: int) -> list[str]:
        """Requires on packages made before, by name."""
        made = self.packages_made
        return [self.rng.choice(made) for _ in range(self.rng.randint(0, most))] if made else []

    def docs(self, name: str) -> list[str]:
        return [f"/usr/share/doc/{name}/{f}" for f in ("README.md", "NEWS", "CHANGELOG.md")] + \
            [f"/usr/share/licenses/{name}/LICENSE"]

    def package(self, name: str, version: str, noarch: bool = False, provides=(), requires=(), files=(),
                sonames=()) -> cr.Package:
        rng, source = self.rng, self.source
        arch = "noarch" if noarch else "x86_64"
        release = source["release"]
        pkg = cr.Package()
        pkg.pkgId = f"{rng.getrandbits(256):064x}"
        pkg.checksum_type = "sha256"
        pkg.name, pkg.arch, pkg.epoch, pkg.version, pkg.release = name, arch, "0", version, release
        pkg.summary = self.text(rng.randint(3, 9)).capitalize()
        pkg.description = source["description"]
        pkg.url = source["url"]
        pkg.rpm_license = source["license"]
        pkg.rpm_vendor = "Fedora Project"
        pkg.rpm_packager = "Fedora Project"
        pkg.rpm_group = "Unspecified"
        pkg.rpm_buildhost = f"buildhw-x86-{rng.randint(1, 16):02d}.iad2.fedoraproject.org"
        pkg.rpm_sourcerpm = source["sourcerpm"]
        pkg.time_build = source["time_build"]
        pkg.time_file = pkg.time_build + rng.randint(600, 86400)
        pkg.size_package = int(rng.lognormvariate(11, 1.6))
        pkg.size_installed = pkg.size_package * rng.randint(2, 4)
        pkg.size_archive = pkg.size_installed + rng.randint(200, 4000)
        pkg.rpm_header_start = 4504
        pkg.rpm_header_end = 4504 + rng.randint(3000, 60000)
        pkg.location_href = f"Packages/{name[0].lower()}/{name}-{version}-{release}.{arch}.rpm"
        evr = (("EQ", "0", version, release))
        pkg.provides = [(name, *evr, False)] + ([] if noarch else [(f"{name}(x86-64)", *evr, False)]) + \
            [tuple(p) for p in provides]
        pkg.requires = [_dependency(r) for r in dict.fromkeys(requires)]
        pkg.files = [("", *_split(path)) for path in files]
        pkg.changelogs = [(f"{self.word().capitalize()} {self.word().capitalize()} <{self.word()}@fedoraproject.org>"
                           f" - {version}-{rng.randint(1, 20)}", pkg.time_build - i * 86400 * rng.randint(1, 90),
                           "- " + self.text(rng.randint(3, 15))) for i in range(rng.randint(1, 3))]
        self.packages_made.append(name)
        self.sonames.extend(sonames)
        return pkg

    def packages(self, count: int):
        """``count`` binary packages, a source package's subpackages together."""
        made = 0
        for family, source, version in self.sources():
            for pkg in self.binaries(family, source, version):
                if made == count:
                    return
                made += 1
                yield pkg


def _dependency(text: str) -> Dep:
    """'name', or 'name OP version': createrepo_c's (name, flags, epoch, ver, rel, pre)."""
    name, _, rest = text.partition(" ")
    if not rest:
        return (name, None, None, None, None, name.startswith("/"))
    op, evr = rest.split(" ", 1)
    ver, _, rel = evr.partition("-")
    flags = {"=": "EQ", ">=": "GE", "<=": "LE", "<": "LT", ">": "GT"}[op]
    return (name, flags, "0", ver, rel or None, False)


def _split(path: str) -> tuple[str, str]:
    directory, _, base = path.rpartition("/")
    return directory + "/", base


def write_repo(outdir: Path, packages: int = 70000, seed: int = 1) -> Path:
    """Write OUTDIR/repodata/ afresh; returns the path of repomd.xml."""
    repodata = Path(outdir) / "repodata"
    if repodata.exists():
        shutil.rmtree(repodata)
    repodata.mkdir(parents=True)
    files = {kind: cls(str(repodata / f"{kind}.xml.gz"), cr.GZ_COMPRESSION)
             for kind, cls in (("primary", cr.PrimaryXmlFile), ("filelists", cr.FilelistsXmlFile),
                               ("other", cr.OtherXmlFile))}
    for xml_file in files.values():
        xml_file.set_num_of_pkgs(packages)
    for pkg in Generator(seed).packages(packages):
        for xml_file in files.values():
            xml_file.add_pkg(pkg)
    repomd = cr.Repomd()
    repomd.set_revision(str(EPOCH))
    for kind, xml_file in files.items():
        xml_file.close()
        path = repodata / f"{kind}.xml.gz"
        os.utime(path, (EPOCH, EPOCH))
        record = cr.RepomdRecord(kind, str(path))
        record.fill(cr.SHA256)
        record.rename_file()
        repomd.set_record(record)
    repomd.sort_records()
    (repodata / "repomd.xml").write_text(repomd.xml_dump())
    return repodata / "repomd.xml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--packages", type=int, default=70000, help="binary packages (default 70000)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.packages < 1:
        parser.error("--packages must be at least 1")
    started = time.monotonic()
    repomd = write_repo(args.outdir, args.packages, args.seed)
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in sorted(repomd.parent.iterdir()))
    print(f"{args.packages} packages in {time.monotonic() - started:.1f} s: {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
