"""Uploads into <topdir>/work (kojihub/kojihub.py: RootExports.uploadFile, checkUpload; handle_upload)."""

from __future__ import annotations

import base64
import hashlib
import os

import koji
import koji.util

from .state import Service


def _verify_class(verify):
    """kojihub/kojihub.py: get_verify_class"""
    if verify == 'md5':
        return hashlib.md5
    if verify == 'adler32':
        return koji.util.adler32_constructor
    if verify == 'sha256':
        return hashlib.sha256
    if verify:
        raise koji.GenericError("Unsupported verify type: %s" % verify)
    return None


class Uploads(Service):
    """Uploads into <topdir>/work (kojihub/kojihub.py: RootExports.uploadFile, checkUpload,
    get_upload_path; kojixmlrpc.py's raw POST, kojihub.py: handle_upload).
    Public: volume, upload_path, raw_upload, uploaded."""

    uses = ('sessions', 'tasks')

    def volume(self, volume):
        if volume not in (None, 'DEFAULT'):
            raise koji.GenericError('No such entry in table volume: %s' % volume)

    def _upload_path(self, reldir, name, create=False, volume=None):
        """kojihub/kojihub.py: get_upload_path"""
        orig_reldir, orig_name = reldir, name
        head, name = os.path.split(name)
        if head or name.startswith('.'):
            raise koji.GenericError("Invalid upload filename: %s" % orig_name)
        reldir = os.path.normpath(reldir)
        if not reldir or reldir.startswith('..'):
            raise koji.GenericError("Invalid upload directory: %s" % orig_reldir)
        self.volume(volume)
        parts = reldir.split('/')
        check_user = True
        if create and parts[0] == 'tasks':
            if len(parts) < 3:
                raise koji.GenericError("Invalid task upload directory: %s" % orig_reldir)
            try:
                task_id = int(parts[2])
            except ValueError:
                raise koji.GenericError("Invalid task upload directory: %s" % orig_reldir)
            self.tasks.assert_owns(self.tasks.get(task_id), self.sessions.current_host())
            if self.state.strict_task_paths and parts[1] != str(task_id % 10000):
                raise koji.GenericError("Invalid task upload directory: %s (hubsim: expected "
                                        "%s)" % (orig_reldir, koji.pathinfo.taskrelpath(task_id)))
            check_user = False
        udir = koji.util.joinpath(str(self.state.workdir), reldir)   # ValueError if absolute
        if create:
            os.makedirs(udir, exist_ok=True)
            owner = os.path.join(udir, '.user')
            if check_user:
                if os.path.exists(owner):
                    with open(owner) as f:
                        if int(f.read()) != self.state.session.user_id:
                            raise koji.GenericError("Invalid upload directory, not owner: %s"
                                                    % orig_reldir)
                else:
                    with open(owner, 'w') as f:
                        f.write(str(self.state.session.user_id))
        return os.path.join(udir, name)

    def raw_upload(self, args, body):
        """kojihub handle_upload"""
        if self.state.session is None:
            raise koji.ActionNotAllowed('you must be logged-in to upload a file')
        name = args['filename'][0]
        path = args.get('filepath', ('',))[0]
        verify = args.get('fileverify', ('',))[0]
        overwrite = args.get('overwrite', ('',))[0]
        offset = int(args.get('offset', ('0',))[0])
        volume = args.get('volume', ('DEFAULT',))[0]
        fn = self._upload_path(path, name, create=True, volume=volume)
        if os.path.exists(fn):
            if not os.path.isfile(fn):
                raise koji.GenericError("destination not a file: %s" % fn)
            if offset == 0 and not overwrite:
                raise koji.GenericError("upload path exists: %s" % fn)
        sum_cls = _verify_class(verify)
        fd = os.open(fn, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if offset == -1:
                offset = os.lseek(fd, 0, 2)
            else:
                os.ftruncate(fd, offset)
                os.lseek(fd, offset, 0)
            os.write(fd, body)
        finally:
            os.close(fd)
        ret = {'size': len(body), 'fileverify': verify, 'offset': offset}
        if sum_cls:
            ret['hexdigest'] = sum_cls(body).hexdigest()
        return ret

    def rpc_uploadFile(self, path, name, size, md5sum, offset, data, volume=None,
                       checksum=None):
        """kojihub/kojihub.py: RootExports.uploadFile"""
        if self.state.session is None:
            raise koji.ActionNotAllowed("you must be logged in for this operation")
        contents = base64.b64decode(data)
        offset, size = koji.decode_int(offset), koji.decode_int(size)
        checksum = md5sum if checksum is None else checksum
        if isinstance(checksum, str):
            verify, digest = 'md5', checksum
        elif checksum is None:
            verify = digest = None
        else:
            verify, digest = checksum
        sum_cls = _verify_class(verify)
        if offset != -1:
            if size is not None and size != len(contents):
                return False
            if verify is not None and digest != sum_cls(contents).hexdigest():
                return False
        fn = self._upload_path(path, name, create=True, volume=volume)
        if os.path.lexists(fn):
            if not os.path.isfile(fn) or os.path.islink(fn):
                raise koji.GenericError("destination not a file: %s" % fn)
            if offset == 0 and not fn.endswith('.log'):
                raise koji.GenericError("file already exists: %s" % fn)
        with open(fn, 'r+b' if os.path.exists(fn) else 'w+b') as f:
            if offset == 0 or (offset == -1 and size == len(contents)):
                f.truncate(0)
            if offset == -1:
                f.seek(0, 2)
            else:
                f.seek(offset)
            f.write(contents)
            if offset == -1:
                if size is not None:
                    f.truncate(size)
                if verify is not None:
                    f.seek(0)
                    if sum_cls(f.read()).hexdigest() != digest:
                        return False
        return True

    def rpc_checkUpload(self, path, name, verify=None, tail=None, volume=None):
        """kojihub/kojihub.py: RootExports.checkUpload"""
        fn = self._upload_path(path, name, volume=volume)
        if not os.path.exists(fn):
            return None
        if not os.path.isfile(fn):
            raise koji.GenericError("Not a regular file: %s" % fn)
        st = os.stat(fn)
        data = {'size': st.st_size, 'mtime': st.st_mtime}
        if verify:
            sum_cls = _verify_class(verify)
            with open(fn, 'rb') as f:
                if tail is not None:
                    if tail < 0:
                        raise koji.GenericError("Invalid tail value: %r" % tail)
                    f.seek(max(st.st_size - tail, 0))
                content = f.read()
            data['sumlength'] = len(content)
            data['hexdigest'] = sum_cls(content).hexdigest()
        return data

    def uploaded(self, path):
        """Content of an uploaded file, path relative to <topdir>/work."""
        return (self.state.workdir / path).read_bytes()
