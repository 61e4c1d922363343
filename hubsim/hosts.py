"""Build hosts and channels: what a host reports of itself and the listings of them."""

from __future__ import annotations

import time

import koji
import koji.util

from .state import Service
from .values import by_id_or_name


class Hosts(Service):
    """Build hosts and channels (kojihub/kojihub.py: get_host, list_hosts, list_channels,
    HostExports.updateHost).  Test API: add_host, set_host_enabled, host."""

    uses = ('sessions',)

    def host_getID(self):
        """kojihub/kojihub.py: HostExports.getID"""
        return self.sessions.current_host()['id']

    def host_getHost(self):
        """kojihub/kojihub.py: HostExports.getHost"""
        return self.rpc_getHost(self.sessions.current_host()['id'])

    def host_isEnabled(self):
        """kojihub/kojihub.py: HostExports.isEnabled"""
        return self.sessions.current_host()['enabled']

    def host_updateHost(self, task_load, ready, data=None):
        """kojihub/kojihub.py: HostExports.updateHost"""
        host = self.sessions.current_host()
        host['task_load'], host['ready'] = float(task_load), ready
        host['update_ts'] = time.time()
        host['heartbeats'].append(host['update_ts'])
        if data is not None:
            host['data'] = data

    def host_setHostData(self, hostdata):
        """kojihub/kojihub.py: HostExports.setHostData"""
        self.sessions.current_host()['data'] = hostdata

    def rpc_getHost(self, hostInfo, strict=False, event=None):
        """kojihub/kojihub.py: RootExports.getHost (get_host)"""
        h = by_id_or_name(self.state.hosts, hostInfo)
        if h is None:
            if strict:
                raise koji.GenericError('Invalid hostInfo: %s' % hostInfo)
            return None
        return {k: h[k] for k in ('id', 'user_id', 'name', 'update_ts', 'ready', 'task_load',
                                  'arches', 'capacity', 'description', 'comment', 'enabled')}

    def add_host(self, name, arches=('x86_64',), capacity=2.0, user=None, password=None,
                 channels=('default',), enabled=True):
        """A build host; its user (default: same name) is created if missing."""
        with self.state.lock:
            user = user or name
            u = next((u for u in self.state.users.values() if u['name'] == user), None)
            uid = u['id'] if u else self.sessions.add_user(user, password or name, usertype='HOST')
            for ch in channels:
                if ch not in self.state.channels.values():
                    self.state.channels[self.state.next_id('channels')] = ch
            hid = self.state.next_id('host')
            arches = arches.split() if isinstance(arches, str) else list(arches)
            self.state.hosts[hid] = {'id': hid, 'user_id': uid, 'name': name,
                                     'arches': ' '.join(arches), 'capacity': float(capacity),
                                     'enabled': enabled, 'ready': False, 'task_load': 0.0,
                                     'update_ts': None, 'description': None, 'comment': None,
                                     'channels': list(channels), 'data': None, 'heartbeats': []}
            return hid

    def set_host_enabled(self, host_id, enabled=True):
        with self.state.lock:
            self.state.hosts[host_id]['enabled'] = enabled

    def host(self, host_id):
        with self.state.lock:
            h = self.state.hosts[host_id]
            return dict(h, last_update=h['update_ts'], heartbeats=list(h['heartbeats']))

    def _channel_info(self, cid):
        return {'id': cid, 'name': self.state.channels[cid], 'description': None, 'enabled': True,
                'comment': None}

    def rpc_getChannel(self, channelInfo, strict=False):
        """kojihub/kojihub.py: RootExports.getChannel (get_channel)"""
        cid = channelInfo if isinstance(channelInfo, int) else next(
            (i for i, n in self.state.channels.items() if n == channelInfo), None)
        if cid not in self.state.channels:
            if strict:
                raise koji.GenericError("No such channel: %s" % channelInfo)
            return None
        return self._channel_info(cid)

    def rpc_listChannels(self, hostID=None, event=None, enabled=None):
        """kojihub/kojihub.py: RootExports.listChannels (list_channels)"""
        names = self.state.channels.values() if hostID is None else \
            self.state.hosts[self.rpc_getHost(hostID, strict=True)['id']]['channels']
        return [self._channel_info(i) for i, n in self.state.channels.items() if n in names]

    def rpc_listHosts(self, arches=None, channelID=None, ready=None, enabled=None, userID=None,
                      queryOpts=None):
        """kojihub/kojihub.py: RootExports.listHosts"""
        if channelID is not None:
            channel = self.rpc_getChannel(channelID, strict=True)['name']
        if isinstance(arches, str):
            arches = [arches]
        if userID is not None and not isinstance(userID, int):
            userID = self.sessions.rpc_getUser(userID, strict=True)['id']
        out = []
        for h in self.state.hosts.values():
            if (arches and not set(arches) & set(h['arches'].split())) or \
                    (channelID is not None and channel not in h['channels']) or \
                    (ready is not None and bool(h['ready']) != bool(ready)) or \
                    (enabled is not None and bool(h['enabled']) != bool(enabled)) or \
                    (userID is not None and h['user_id'] != userID):
                continue
            out.append(self.rpc_getHost(h['id']))
        return out
