// Runs deploy/demo-backend.mjs unchanged but bound to every interface: that script listens on
// 127.0.0.1 (it is made for the local stack), and in compose the data planes reach the backends
// over the compose network. Usage: node deploy/docker/demo-backend-any-interface.mjs NAME PORT
import http from 'node:http';

const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (port, _host, ...rest) {
  return listen.call(this, port, '0.0.0.0', ...rest);
};
await import('../demo-backend.mjs');
