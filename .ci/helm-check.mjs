#!/usr/bin/env node
// Checks the Helm chart with real tools, offline:
//  - helm lint --strict (defaults, every toggle on);
//  - helm template with defaults, every toggle on, and the workshop's names;
//    every rendered object validated against the Kubernetes schemas
//    (kubernetes-models, @kubernetes-models/prometheus-operator);
//  - the chart's promises: restricted pod security, probes, drain timing,
//    workshop defaults, selectors that match, monitoring files shipped verbatim;
//  - values.schema.json and template guards reject bad values;
//  - helm package;
//  - the rendered env matches the variables the code reads (vitest, no drift).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const chart = join(root, 'helm/api-gateway');
const allOn = join(chart, 'ci/all-on-values.yaml');
const routesValues = join(chart, 'ci/routes-values.yaml');
const started = Date.now();
const failures = [];
let passed = 0;

const helmHome = mkdtempSync(join(tmpdir(), 'helm-home-'));
const helmEnv = {
  ...process.env,
  HELM_CONFIG_HOME: join(helmHome, 'config'),
  HELM_CACHE_HOME: join(helmHome, 'cache'),
  HELM_DATA_HOME: join(helmHome, 'data'),
};
const helmBin =
  process.env.HELM_BIN ||
  execFileSync(join(root, '.ci/ensure-helm.sh'), {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();

function helm(args) {
  const r = spawnSync(helmBin, args, {
    env: helmEnv,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  return { ok: r.status === 0, out: r.stdout, err: r.stderr };
}

function check(name, fn) {
  try {
    fn();
    passed++;
    console.log(`  ok   ${name}`);
  } catch (err) {
    failures.push(name);
    console.log(
      `  FAIL ${name}\n       ${String(err.message ?? err)
        .split('\n')
        .join('\n       ')}`,
    );
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

function render(release, args = []) {
  const r = helm(['template', release, chart, '--namespace', 'ml', ...args]);
  if (!r.ok)
    throw new Error(`helm template ${args.join(' ')} failed:\n${r.err}`);
  return parseAllDocuments(r.out)
    .map((doc) => {
      if (doc.errors.length)
        throw new Error(`rendered YAML is invalid: ${doc.errors[0].message}`);
      return doc.toJS();
    })
    .filter(Boolean);
}

const modelCache = new Map();
async function modelFor(apiVersion, kind) {
  const module = apiVersion.startsWith('monitoring.coreos.com/')
    ? `@kubernetes-models/prometheus-operator/${apiVersion}`
    : `kubernetes-models/${apiVersion.includes('/') ? apiVersion : `v1`}`;
  if (!modelCache.has(module)) modelCache.set(module, await import(module));
  const Model = modelCache.get(module)[kind];
  if (!Model) throw new Error(`no schema for ${apiVersion} ${kind}`);
  return Model;
}

const byKind = (objs, kind) => objs.filter((o) => o.kind === kind);
const one = (objs, kind, pred = () => true) => {
  const found = objs.filter((o) => o.kind === kind && pred(o));
  assert(found.length === 1, `expected one ${kind}, found ${found.length}`);
  return found[0];
};
const matches = (selector, labels) =>
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);
const podSpecs = (objs) => [
  ...byKind(objs, 'Deployment').map((d) => ({
    name: `Deployment/${d.metadata.name}`,
    spec: d.spec.template.spec,
  })),
  ...byKind(objs, 'Pod').map((p) => ({
    name: `Pod/${p.metadata.name}`,
    spec: p.spec,
  })),
];

console.log(
  `helm-check: ${helm(['version', '--short']).out.trim()}, chart ${chart}`,
);

// --- lint ---------------------------------------------------------------------
for (const [label, args] of [
  ['defaults', []],
  ['every toggle on', ['-f', allOn]],
  ['model routes', ['-f', routesValues]],
]) {
  check(`helm lint --strict (${label})`, () => {
    const r = helm(['lint', '--strict', chart, ...args]);
    assert(r.ok, r.out + r.err);
  });
}

// --- render ---------------------------------------------------------------------
const renders = {};
check('helm template with defaults', () => {
  renders.defaults = render('gw');
});
check('helm template with every toggle on', () => {
  renders.allOn = render('gw', ['-f', allOn]);
});
check(
  'helm template with the workshop names (release api-gateway, service.name=api-gateway-service)',
  () => {
    renders.workshop = render('api-gateway', [
      '--set',
      'service.name=api-gateway-service',
    ]);
  },
);
check('helm template with autoscaling and the PDB off, 2 backends', () => {
  renders.noHpa = render('gw', [
    '--set',
    'autoscaling.enabled=false',
    '--set',
    'podDisruptionBudget.enabled=false',
    '--set',
    'env.BACKEND_URLS=http://a:3000\\,http://b:3000',
  ]);
});

check('helm template with model routes', () => {
  renders.routes = render('gw', ['-f', routesValues]);
});

// --- schema validation --------------------------------------------------------------
for (const [label, objs] of Object.entries(renders)) {
  let valid = 0;
  const kinds = new Set(objs.map((o) => o.kind));
  for (const obj of objs) {
    try {
      const Model = await modelFor(obj.apiVersion, obj.kind);
      new Model(obj).validate();
      valid++;
    } catch (err) {
      failures.push(`schema ${label} ${obj.kind}/${obj.metadata?.name}`);
      console.log(
        `  FAIL schema (${label}) ${obj.kind}/${obj.metadata?.name}: ${String(err.message).slice(0, 2000)}`,
      );
    }
  }
  if (valid === objs.length) {
    passed++;
    console.log(
      `  ok   all ${valid} objects (${label}) valid against the Kubernetes schemas: ${[...kinds].sort().join(', ')}`,
    );
  }
}

// --- what the chart promises ----------------------------------------------------------
const d = renders.defaults ?? [];
const a = renders.allOn ?? [];

check('defaults render the expected objects, optional ones off', () => {
  const kinds = d.map((o) => o.kind).sort();
  assert(
    isDeepStrictEqual(kinds, [
      'ConfigMap',
      'Deployment',
      'HorizontalPodAutoscaler',
      'NetworkPolicy',
      'Pod',
      'PodDisruptionBudget',
      'Secret',
      'Service',
      'ServiceAccount',
    ]),
    `got ${kinds.join(', ')}`,
  );
});
check(
  'every toggle on renders Ingress, ServiceMonitor, PrometheusRule, dashboard, demo backend',
  () => {
    for (const kind of ['Ingress', 'ServiceMonitor', 'PrometheusRule'])
      one(a, kind);
    assert(
      byKind(a, 'Deployment').length === 2 && byKind(a, 'Service').length === 2,
      'demo Deployment/Service missing',
    );
    assert(
      byKind(a, 'NetworkPolicy').length === 2,
      'demo NetworkPolicy missing',
    );
  },
);

for (const [label, objs] of [
  ['defaults', d],
  ['every toggle on', a],
]) {
  check(`restricted Pod Security Standard on every pod (${label})`, () => {
    for (const { name, spec } of podSpecs(objs)) {
      const psc = spec.securityContext ?? {};
      assert(
        !spec.hostNetwork && !spec.hostPID && !spec.hostIPC,
        `${name}: host namespaces`,
      );
      assert(
        !(spec.volumes ?? []).some((v) => v.hostPath),
        `${name}: hostPath volume`,
      );
      for (const c of spec.containers) {
        const sc = c.securityContext ?? {};
        const where = `${name} container ${c.name}`;
        assert(
          (sc.runAsNonRoot ?? psc.runAsNonRoot) === true,
          `${where}: runAsNonRoot`,
        );
        assert((sc.runAsUser ?? psc.runAsUser) !== 0, `${where}: runs as root`);
        assert(
          sc.allowPrivilegeEscalation === false,
          `${where}: allowPrivilegeEscalation`,
        );
        assert(sc.privileged !== true, `${where}: privileged`);
        assert(
          sc.capabilities?.drop?.includes('ALL'),
          `${where}: capabilities.drop ALL`,
        );
        assert(
          (sc.capabilities?.add ?? []).every(
            (cap) => cap === 'NET_BIND_SERVICE',
          ),
          `${where}: adds capabilities`,
        );
        assert(
          (sc.seccompProfile ?? psc.seccompProfile)?.type === 'RuntimeDefault',
          `${where}: seccomp RuntimeDefault`,
        );
        assert(
          sc.readOnlyRootFilesystem === true,
          `${where}: readOnlyRootFilesystem`,
        );
        for (const kind of ['requests', 'limits'])
          for (const res of ['cpu', 'memory'])
            assert(
              c.resources?.[kind]?.[res],
              `${where}: resources.${kind}.${res}`,
            );
      }
      if (name.startsWith('Deployment/')) {
        const tmp = spec.volumes.find((v) => v.name === 'tmp');
        assert(tmp?.emptyDir, `${name}: /tmp emptyDir volume`);
        assert(
          spec.containers[0].volumeMounts.some(
            (m) => m.name === 'tmp' && m.mountPath === '/tmp',
          ),
          `${name}: /tmp mount`,
        );
      }
    }
  });
}

check(
  'probes: startup and liveness on /health/live, readiness on /health/ready, on the http port',
  () => {
    const c = one(d, 'Deployment').spec.template.spec.containers[0];
    assert(c.startupProbe.httpGet.path === '/health/live', 'startupProbe path');
    assert(
      c.livenessProbe.httpGet.path === '/health/live',
      'livenessProbe path',
    );
    assert(
      c.readinessProbe.httpGet.path === '/health/ready',
      'readinessProbe path',
    );
    for (const p of [c.startupProbe, c.livenessProbe, c.readinessProbe])
      assert(p.httpGet.port === 'http', 'probe port');
    assert(
      c.ports.find((p) => p.name === 'http').containerPort === 8080,
      'containerPort 8080',
    );
  },
);

check(
  'drain: preStop sleep and terminationGracePeriodSeconds > preStop + shutdown delay + drain timeout',
  () => {
    const dep = one(d, 'Deployment');
    const env = one(d, 'ConfigMap').data;
    const sleep =
      dep.spec.template.spec.containers[0].lifecycle.preStop.sleep.seconds;
    const drain =
      sleep +
      (Number(env.SHUTDOWN_DELAY_MS) + Number(env.SHUTDOWN_TIMEOUT_MS)) / 1000;
    assert(sleep > 0, 'no preStop sleep');
    assert(
      dep.spec.template.spec.terminationGracePeriodSeconds > drain,
      `grace ${dep.spec.template.spec.terminationGracePeriodSeconds} <= ${drain}`,
    );
  },
);

check(
  'workshop defaults: HPA 2..10 at CPU 70 %, PDB minAvailable 1, Service 80 -> http (8080)',
  () => {
    const hpa = one(d, 'HorizontalPodAutoscaler');
    assert(
      hpa.spec.minReplicas === 2 && hpa.spec.maxReplicas === 10,
      'HPA range',
    );
    assert(
      hpa.spec.metrics.length === 1 &&
        hpa.spec.metrics[0].resource.name === 'cpu' &&
        hpa.spec.metrics[0].resource.target.averageUtilization === 70,
      'HPA cpu 70',
    );
    assert(one(d, 'PodDisruptionBudget').spec.minAvailable === 1, 'PDB');
    const port = one(d, 'Service').spec.ports[0];
    assert(port.port === 80 && port.targetPort === 'http', 'Service port');
    assert(
      one(d, 'Deployment').spec.replicas === undefined,
      'replicas must be left to the HPA',
    );
    const noHpa = one(renders.noHpa, 'Deployment');
    assert(noHpa.spec.replicas === 2, 'replicas 2 without HPA');
    const res = one(d, 'Deployment').spec.template.spec.containers[0].resources;
    assert(
      res.requests.cpu === '200m' &&
        res.requests.memory === '160Mi' &&
        res.limits.memory === '256Mi',
      'measured resources',
    );
    const mem = one(a, 'HorizontalPodAutoscaler').spec.metrics.find(
      (m) => m.resource.name === 'memory',
    );
    assert(
      mem?.resource.target.averageUtilization === 80,
      'optional memory target',
    );
  },
);

check(
  'workshop names: Deployment api-gateway, Service api-gateway-service 80 -> 8080',
  () => {
    const w = renders.workshop;
    assert(
      one(w, 'Deployment').metadata.name === 'api-gateway',
      'Deployment name',
    );
    const svc = one(w, 'Service');
    assert(
      svc.metadata.name === 'api-gateway-service',
      `Service name ${svc.metadata.name}`,
    );
    assert(
      one(w, 'ConfigMap').data.BACKEND_URL ===
        'http://sentiment-api-service:80',
      'backend',
    );
  },
);

for (const [label, objs] of [
  ['defaults', d],
  ['every toggle on', a],
]) {
  check(`selectors and references agree (${label})`, () => {
    const deps = byKind(objs, 'Deployment');
    const podLabels = (name) =>
      deps.find((x) => x.metadata.name === name)?.spec.template.metadata.labels;
    for (const dep of deps)
      assert(
        matches(
          dep.spec.selector.matchLabels,
          dep.spec.template.metadata.labels,
        ),
        `${dep.metadata.name} selector`,
      );
    for (const svc of byKind(objs, 'Service')) {
      const targets = deps.filter((x) =>
        matches(svc.spec.selector, x.spec.template.metadata.labels),
      );
      assert(
        targets.length === 1,
        `Service ${svc.metadata.name} selects ${targets.length} Deployments`,
      );
      const ports = targets[0].spec.template.spec.containers[0].ports.map(
        (p) => p.name,
      );
      for (const p of svc.spec.ports)
        assert(
          ports.includes(p.targetPort),
          `Service ${svc.metadata.name} targetPort ${p.targetPort}`,
        );
    }
    const gw = deps.find(
      (x) => x.metadata.labels['app.kubernetes.io/component'] === 'gateway',
    );
    for (const np of byKind(objs, 'NetworkPolicy'))
      assert(
        deps.some((x) =>
          matches(
            np.spec.podSelector.matchLabels,
            x.spec.template.metadata.labels,
          ),
        ),
        `NetworkPolicy ${np.metadata.name}`,
      );
    assert(
      matches(
        one(objs, 'PodDisruptionBudget').spec.selector.matchLabels,
        gw.spec.template.metadata.labels,
      ),
      'PDB selector',
    );
    assert(
      one(objs, 'HorizontalPodAutoscaler').spec.scaleTargetRef.name ===
        gw.metadata.name,
      'HPA target',
    );
    const spec = gw.spec.template.spec;
    const cmName = spec.containers[0].envFrom[0].configMapRef.name;
    assert(
      one(objs, 'ConfigMap', (c) => c.metadata.name === cmName),
      'envFrom ConfigMap',
    );
    const secret = spec.containers[0].envFrom[1].secretRef.name;
    assert(
      one(objs, 'Secret', (s) => s.metadata.name === secret),
      'envFrom Secret',
    );
    const sa = spec.serviceAccountName;
    assert(
      one(objs, 'ServiceAccount', (s) => s.metadata.name === sa),
      'ServiceAccount',
    );
    for (const ing of byKind(objs, 'Ingress'))
      for (const rule of ing.spec.rules)
        for (const p of rule.http.paths)
          assert(
            byKind(objs, 'Service').some(
              (s) => s.metadata.name === p.backend.service.name,
            ),
            'Ingress backend',
          );
    for (const sm of byKind(objs, 'ServiceMonitor')) {
      const svc = byKind(objs, 'Service').find((s) =>
        matches(sm.spec.selector.matchLabels, s.metadata.labels),
      );
      assert(svc, 'ServiceMonitor selects no Service');
      assert(
        svc.spec.ports.some((p) => p.name === sm.spec.endpoints[0].port),
        'ServiceMonitor port',
      );
      assert(
        svc.metadata.labels[sm.spec.jobLabel] === 'api-gateway',
        'job label must be api-gateway (alerts select it)',
      );
      assert(podLabels(gw.metadata.name), 'gateway pods');
    }
  });
}

check(
  'capture: CAPTURE_* from capture.*, the headers Secret mounted as CAPTURE_HEADERS_FILE',
  () => {
    const cm = one(a, 'ConfigMap', (c) => c.data?.GATEWAY_PORT);
    const want = {
      CAPTURE_SAMPLE_RATE: '0.1',
      CAPTURE_URL: 'http://capture-receiver.monitoring/events',
      CAPTURE_REDIS_STREAM: 'capture',
      CAPTURE_REDACT: '/request/user,/metadata/email',
      CAPTURE_HEADERS_FILE: '/etc/api-gateway/capture/headers',
    };
    for (const [name, value] of Object.entries(want))
      assert(cm.data[name] === value, `${name}=${cm.data[name]}`);
    const spec = one(
      a,
      'Deployment',
      (x) => x.metadata.labels['app.kubernetes.io/component'] === 'gateway',
    ).spec.template.spec;
    const volume = spec.volumes.find((v) => v.name === 'capture-headers');
    assert(volume?.secret?.secretName === 'capture-sink', 'capture volume');
    const mount = spec.containers[0].volumeMounts.find(
      (m) => m.name === 'capture-headers',
    );
    assert(mount?.mountPath === '/etc/api-gateway/capture', 'capture mount');
    const headers = helm([
      'template',
      'gw',
      chart,
      '--set-json',
      'capture.headers={"authorization":"Bearer a%b,c"}',
    ]);
    assert(headers.ok, headers.err);
    const secret = parseAllDocuments(headers.out)
      .map((doc) => doc.toJS())
      .find((o) => o?.kind === 'Secret');
    const value = Buffer.from(secret.data.CAPTURE_HEADERS, 'base64').toString();
    assert(
      value === 'authorization=Bearer a%25b%2Cc',
      `CAPTURE_HEADERS ${value}`,
    );
  },
);

check(
  'demo backend: gateway BACKEND_URL points at the demo Service, which runs node demo/server.mjs',
  () => {
    const cm = one(a, 'ConfigMap', (c) => c.data?.GATEWAY_PORT);
    const demoSvc = one(
      a,
      'Service',
      (s) =>
        s.metadata.labels['app.kubernetes.io/component'] === 'demo-backend',
    );
    assert(
      cm.data.BACKEND_URL === `http://${demoSvc.metadata.name}:80`,
      `BACKEND_URL ${cm.data.BACKEND_URL}`,
    );
    assert(!('BACKEND_URLS' in cm.data), 'BACKEND_URLS must be left out');
    const demo = one(
      a,
      'Deployment',
      (x) =>
        x.metadata.labels['app.kubernetes.io/component'] === 'demo-backend',
    );
    const c = demo.spec.template.spec.containers[0];
    assert(
      isDeepStrictEqual(c.command, ['node', 'demo/server.mjs']),
      'demo command',
    );
    assert(
      c.image ===
        one(a, 'Deployment', (x) => x !== demo).spec.template.spec.containers[0]
          .image,
      'demo uses the gateway image',
    );
  },
);

check(
  'routes value: a ConfigMap holding it verbatim, mounted as a directory at ROUTES_FILE, outside checksum/config',
  () => {
    const r = renders.routes ?? [];
    const env = one(r, 'ConfigMap', (c) => c.data?.GATEWAY_PORT).data;
    const routesCm = one(r, 'ConfigMap', (c) => c.data?.['routes.yaml']);
    const want = parse(readFileSync(routesValues, 'utf8')).routes;
    assert(
      isDeepStrictEqual(parse(routesCm.data['routes.yaml']), want),
      'routes.yaml differs from the routes value',
    );
    const spec = one(r, 'Deployment').spec.template.spec;
    const volume = spec.volumes.find(
      (v) => v.configMap?.name === routesCm.metadata.name,
    );
    assert(volume, 'no volume from the routes ConfigMap');
    const mount = spec.containers[0].volumeMounts.find(
      (m) => m.name === volume.name,
    );
    assert(mount && !mount.subPath, 'mounted as a directory (no subPath)');
    assert(
      env.ROUTES_FILE === `${mount.mountPath}/routes.yaml`,
      `ROUTES_FILE ${env.ROUTES_FILE}`,
    );
    const defaults = one(d, 'ConfigMap').data;
    assert(defaults.ROUTES_FILE === '', 'ROUTES_FILE set without routes');
    assert(
      !one(d, 'Deployment').spec.template.spec.volumes.some(
        (v) => v.name === volume.name,
      ),
      'routes volume without routes',
    );
    const checksum = (objs) =>
      one(objs, 'Deployment').spec.template.metadata.annotations[
        'checksum/config'
      ];
    const reweighted = render('gw', [
      '-f',
      routesValues,
      '--set',
      'routes.models.sentiment.versions[0].weight=0',
    ]);
    assert(
      checksum(reweighted) === checksum(r),
      'a routes change must not restart pods (it is reloaded live)',
    );
  },
);

check(
  'tenants value: a ConfigMap holding it verbatim, mounted as a directory at TENANTS_FILE; none without it',
  () => {
    const env = one(a, 'ConfigMap', (c) => c.data?.GATEWAY_PORT).data;
    const cm = one(a, 'ConfigMap', (c) => c.data?.['tenants.yaml']);
    const want = parse(readFileSync(allOn, 'utf8')).tenants;
    assert(
      isDeepStrictEqual(parse(cm.data['tenants.yaml']), want),
      'tenants.yaml differs from the tenants value',
    );
    const spec = one(a, 'Deployment', (x) => !x.metadata.name.endsWith('-demo'))
      .spec.template.spec;
    const volume = spec.volumes.find(
      (v) => v.configMap?.name === cm.metadata.name,
    );
    assert(volume, 'no volume from the tenants ConfigMap');
    const mount = spec.containers[0].volumeMounts.find(
      (m) => m.name === volume.name,
    );
    assert(mount && !mount.subPath, 'mounted as a directory (no subPath)');
    assert(
      env.TENANTS_FILE === `${mount.mountPath}/tenants.yaml`,
      `TENANTS_FILE ${env.TENANTS_FILE}`,
    );
    const defaults = one(d, 'ConfigMap').data;
    assert(defaults.TENANTS_FILE === '', 'TENANTS_FILE set without tenants');
    assert(
      !byKind(d, 'ConfigMap').some((c) => c.data?.['tenants.yaml']),
      'tenants ConfigMap without tenants',
    );
  },
);

check(
  'auth.jwt: JWT_* from the values; publicKey in a ConfigMap mounted at JWT_PUBLIC_KEY_FILE; jwksUrl opens its port to egress',
  () => {
    const env = one(a, 'ConfigMap', (c) => c.data?.GATEWAY_PORT).data;
    assert(
      env.JWT_JWKS_URL === 'https://idp.example.com/.well-known/jwks.json' &&
        env.JWT_ISSUER === 'https://idp.example.com/' &&
        env.JWT_AUDIENCE === 'api-gateway' &&
        env.JWT_PUBLIC_KEY_FILE === '',
      `JWT_* ${JSON.stringify(env)}`,
    );
    const egress = one(
      a,
      'NetworkPolicy',
      (p) => !p.metadata.name.endsWith('-demo'),
    ).spec.egress;
    assert(
      egress.some(
        (rule) =>
          rule.ports?.some((p) => p.port === 443) &&
          rule.to?.[0]?.ipBlock?.cidr === '203.0.113.0/24',
      ),
      'no egress rule to the JWKS port',
    );
    const pem = '-----BEGIN PUBLIC KEY-----\nMFkw...\n-----END PUBLIC KEY-----';
    const r = render('gw', [
      '--set',
      `auth.jwt.publicKey=${pem}`,
      '--set',
      'auth.jwt.issuers={https://idp/}',
      '--set',
      'auth.jwt.audiences={api}',
    ]);
    const cm = one(r, 'ConfigMap', (c) => c.data?.key !== undefined);
    assert(cm.data.key.trim() === pem, `key ${cm.data.key}`);
    const spec = one(r, 'Deployment').spec.template.spec;
    const volume = spec.volumes.find(
      (v) => v.configMap?.name === cm.metadata.name,
    );
    const mount = spec.containers[0].volumeMounts.find(
      (m) => m.name === volume?.name,
    );
    const rendered = one(r, 'ConfigMap', (c) => c.data?.GATEWAY_PORT).data;
    assert(
      mount && rendered.JWT_PUBLIC_KEY_FILE === `${mount.mountPath}/key`,
      `JWT_PUBLIC_KEY_FILE ${rendered.JWT_PUBLIC_KEY_FILE}`,
    );
  },
);

check('only one of BACKEND_URL / BACKEND_URLS in the ConfigMap', () => {
  const def = one(d, 'ConfigMap').data;
  assert('BACKEND_URL' in def && !('BACKEND_URLS' in def), 'defaults');
  const multi = one(renders.noHpa, 'ConfigMap').data;
  assert(
    multi.BACKEND_URLS === 'http://a:3000,http://b:3000' &&
      !('BACKEND_URL' in multi),
    'BACKEND_URLS',
  );
});

check(
  'metrics: METRICS_PORT adds a metrics port to the pod, Service, ServiceMonitor and scrape annotations',
  () => {
    const gw = one(
      a,
      'Deployment',
      (x) => x.metadata.labels['app.kubernetes.io/component'] === 'gateway',
    );
    assert(
      gw.spec.template.spec.containers[0].ports.some(
        (p) => p.name === 'metrics' && p.containerPort === 9090,
      ),
      'container port',
    );
    assert(
      gw.spec.template.metadata.annotations['prometheus.io/port'] === '9090',
      'annotation',
    );
    const sm = one(a, 'ServiceMonitor');
    assert(sm.spec.endpoints[0].port === 'metrics', 'ServiceMonitor port');
    assert(
      sm.spec.endpoints[0].authorization?.credentials?.key ===
        'METRICS_API_KEY',
      'ServiceMonitor bearer from the Secret',
    );
    const secret = one(a, 'Secret');
    assert(
      Buffer.from(secret.data.API_KEYS, 'base64').toString() ===
        'key-one,key-two',
      'API_KEYS in the Secret',
    );
    assert(
      !('API_KEYS' in one(a, 'ConfigMap', (c) => c.data?.GATEWAY_PORT).data),
      'API_KEYS must not be in the ConfigMap',
    );
  },
);

check('PrometheusRule ships files/alerts.yaml verbatim', () => {
  const rule = one(a, 'PrometheusRule');
  const file = parse(readFileSync(join(chart, 'files/alerts.yaml'), 'utf8'));
  assert(
    isDeepStrictEqual(rule.spec, file),
    'PrometheusRule spec differs from files/alerts.yaml',
  );
  assert(
    rule.metadata.labels.release === 'kube-prometheus-stack',
    'extra labels',
  );
});

check(
  'dashboard ConfigMap ships files/dashboard.json verbatim, with the sidecar label',
  () => {
    const cm = one(a, 'ConfigMap', (c) => c.data?.['api-gateway.json']);
    const file = JSON.parse(
      readFileSync(join(chart, 'files/dashboard.json'), 'utf8'),
    );
    assert(
      isDeepStrictEqual(JSON.parse(cm.data['api-gateway.json']), file),
      'dashboard differs',
    );
    assert(cm.metadata.labels.grafana_dashboard === '1', 'sidecar label');
    assert(cm.metadata.namespace === 'monitoring', 'dashboard namespace');
  },
);

check('a restricted NetworkPolicy still lets the helm test pod in', () => {
  const pod = one(a, 'Pod');
  const np = one(
    a,
    'NetworkPolicy',
    (n) => n.metadata.labels['app.kubernetes.io/component'] === 'gateway',
  );
  const http = np.spec.ingress.find((r) =>
    r.ports.some((p) => p.port === 'http'),
  );
  assert(http.from.length > 1, 'ingressFrom not applied');
  assert(
    http.from.some(
      (peer) =>
        peer.podSelector &&
        matches(peer.podSelector.matchLabels, pod.metadata.labels),
    ),
    'test pod not allowed',
  );
});

check(
  'redis: URL in the ConfigMap, password from the existing Secret, egress opened on its port',
  () => {
    const env = one(
      a,
      'ConfigMap',
      (c) => c.data?.GATEWAY_PORT !== undefined,
    ).data;
    assert(env.REDIS_URL === 'redis://redis-master.redis:6379/0', 'REDIS_URL');
    assert(one(d, 'Secret').data.REDIS_PASSWORD === '', 'default password');
    const gateway = byKind(a, 'Deployment').find(
      (x) =>
        x.spec.template.metadata.labels['app.kubernetes.io/component'] ===
        'gateway',
    );
    const password = gateway.spec.template.spec.containers[0].env.find(
      (e) => e.name === 'REDIS_PASSWORD',
    );
    assert(
      password?.valueFrom?.secretKeyRef?.name === 'redis' &&
        password.valueFrom.secretKeyRef.key === 'redis-password',
      'REDIS_PASSWORD from redis.existingSecret',
    );
    const np = one(
      a,
      'NetworkPolicy',
      (n) => n.metadata.labels['app.kubernetes.io/component'] === 'gateway',
    );
    const rule = np.spec.egress.find((r) =>
      (r.ports ?? []).some((p) => p.port === 6379),
    );
    assert(
      rule?.to?.[0]?.namespaceSelector,
      'redis egress rule with redis.egressTo',
    );
    const defaults = one(d, 'NetworkPolicy');
    assert(!defaults.spec.egress, 'no egress rules when lock-down is off');
  },
);

check(
  'redis: Sentinel and Cluster lists in the ConfigMap, the sentinel password from the existing Secret, egress on their ports',
  () => {
    const sentinel = render('gw', [
      '--set',
      'redis.sentinels={redis-node-0.redis-headless:26379,redis-node-1.redis-headless}',
      '--set',
      'redis.existingSecret=redis',
      '--set',
      'redis.existingSecretSentinelPasswordKey=redis-password',
      '--set',
      'networkPolicy.egress.enabled=true',
    ]);
    const env = one(
      sentinel,
      'ConfigMap',
      (c) => c.data?.GATEWAY_PORT !== undefined,
    ).data;
    assert(
      env.REDIS_SENTINELS ===
        'redis-node-0.redis-headless:26379,redis-node-1.redis-headless' &&
        env.REDIS_SENTINEL_NAME === 'mymaster' &&
        env.REDIS_URL === '' &&
        env.REDIS_CLUSTER_NODES === '',
      `sentinel env ${JSON.stringify(env)}`,
    );
    const container = one(sentinel, 'Deployment').spec.template.spec
      .containers[0];
    const sentinelPassword = container.env.find(
      (e) => e.name === 'REDIS_SENTINEL_PASSWORD',
    );
    assert(
      sentinelPassword?.valueFrom?.secretKeyRef?.key === 'redis-password',
      'REDIS_SENTINEL_PASSWORD from redis.existingSecret',
    );
    const ports = (objs) =>
      one(objs, 'NetworkPolicy')
        .spec.egress.flatMap((r) => r.ports.map((p) => p.port))
        .filter((p) => p !== 53);
    assert(
      isDeepStrictEqual(ports(sentinel), [26379, 6379]),
      `sentinel egress ports ${ports(sentinel)}`,
    );
    const cluster = render('gw', [
      '--set',
      'redis.clusterNodes={redis-cluster-0:6379,redis-cluster-1:7000}',
      '--set',
      'networkPolicy.egress.enabled=true',
    ]);
    const clusterEnv = one(
      cluster,
      'ConfigMap',
      (c) => c.data?.GATEWAY_PORT !== undefined,
    ).data;
    assert(
      clusterEnv.REDIS_CLUSTER_NODES ===
        'redis-cluster-0:6379,redis-cluster-1:7000' &&
        clusterEnv.REDIS_SENTINELS === '',
      `cluster env ${JSON.stringify(clusterEnv)}`,
    );
    assert(
      isDeepStrictEqual(ports(cluster), [6379, 7000]),
      `cluster egress ports ${ports(cluster)}`,
    );
  },
);

check('helm test hook checks /health and /predict against the Service', () => {
  const pod = one(d, 'Pod');
  assert(
    pod.metadata.annotations['helm.sh/hook'] === 'test',
    'hook annotation',
  );
  const script = pod.spec.containers[0].command.join(' ');
  assert(script.includes('/health') && script.includes('/predict'), 'script');
  const gw = pod.spec.containers[0].env.find((e) => e.name === 'GATEWAY').value;
  assert(
    gw === `http://${one(d, 'Service').metadata.name}:80`,
    `GATEWAY ${gw}`,
  );
});

// --- bad values are refused -----------------------------------------------------------
const rejected = [
  [['--set', 'replicaCount=two'], 'replicaCount'],
  [['--set', 'env.BACKEND_TIMEOUT_MS=ten'], 'BACKEND_TIMEOUT_MS'],
  [['--set', 'env.LB_POLICY=random'], 'LB_POLICY'],
  [['--set', 'env.LOG_LEVEL=verbose'], 'LOG_LEVEL'],
  [['--set', 'env.RETRY_ON_5XX=maybe'], 'RETRY_ON_5XX'],
  [['--set', 'env.GATEWAY_PORT=70000'], 'GATEWAY_PORT'],
  [['--set', 'env.TYPO_VAR=1'], 'TYPO_VAR'],
  [['--set', 'autoscaling.enabled=yes'], 'autoscaling/enabled'],
  [['--set', 'service.port=http'], 'service/port'],
  [['--set', 'service.type=Internal'], 'service/type'],
  [['--set', 'resources.requests=100m'], 'resources/requests'],
  [['--set', 'image.pullPolicy=Sometimes'], 'pullPolicy'],
  [['--set', 'auth.apiKeys=abc'], 'apiKeys'],
  [['--set', 'metrics.serviceMonitor.interval=often'], 'interval'],
  [['--set', 'redis.url=redis://user:secret@redis:6379'], 'redis/url'],
  [['--set', 'redis.sentinels={redis://s0:26379}'], 'redis/sentinels'],
  [['--set', 'redis.clusterNodes={r0:6379 r1:6379}'], 'redis/clusterNodes'],
  [
    [
      '--set',
      'redis.url=redis://r:6379',
      '--set',
      'redis.sentinels={s0:26379}',
    ],
    'set at most one',
  ],
  [
    ['--set', 'env.RATE_LIMIT_ON_REDIS_ERROR=maybe'],
    'RATE_LIMIT_ON_REDIS_ERROR',
  ],
  [['--set', 'env.CACHE_SCOPE=tenant'], 'CACHE_SCOPE'],
  [['--set', 'env.MIRROR_MAX_INFLIGHT=many'], 'MIRROR_MAX_INFLIGHT'],
  [['--set', 'batching.maxSize=1'], 'maxSize'],
  [['--set', 'env.RATE_LIMIT_UNIT=texts'], 'RATE_LIMIT_UNIT'],
  [['--set', 'auth.jwt.jwksUrl=https://idp/jwks'], 'required'],
  [
    [
      '--set',
      'auth.jwt.jwksUrl=https://idp/jwks',
      '--set',
      'auth.jwt.publicKey=pem',
      '--set',
      'auth.jwt.issuers={i}',
      '--set',
      'auth.jwt.audiences={a}',
    ],
    'both set',
  ],
  [['--set', 'auth.jwt.algorithms={RS256,HS256}'], 'algorithms'],
  [['--set', 'tenants.tenants.a.priority=urgent'], 'priority'],
  [['--set', 'tenants.tenants.a.apiKeys={plain-key}'], 'apiKeys'],
  [['--set', 'tenants.tenants.default.rps=1'], 'default'],
  [['--set', 'batching.item=request/text'], 'item'],
  [['--set', 'capture.sampleRate=2'], 'sampleRate'],
  [['--set', 'capture.url=ftp://sink'], 'capture/url'],
  [['--set', 'capture.redact={request/user}'], 'redact'],
  [['--set', 'capture.headers.ce-type=x'], 'ce-type'],
  [
    [
      '--set',
      'capture.headers.authorization=t',
      '--set',
      'capture.existingSecret=s',
    ],
    'at most one',
  ],
  [
    [
      '--set-json',
      'routes={"models":{"m":{"versions":[{"name":"v1","urls":["http://a"],"weight":1,"batching":{"path":"batch"}}]}}}',
    ],
    'batching/path',
  ],
  [
    [
      '--set-json',
      'routes={"models":{"m":{"versions":[{"name":"v1","urls":["http://a"],"weight":-1}]}}}',
    ],
    'weight',
  ],
  [
    [
      '--set-json',
      'routes={"models":{"m":{"versions":[{"name":"v1","url":"http://a","weight":1}]}}}',
    ],
    'url',
  ],
  [
    [
      '--set',
      'env.BACKEND_URL=http://a:1',
      '--set',
      'env.BACKEND_URLS=http://b:1',
    ],
    'both set',
  ],
  [
    ['--set', 'terminationGracePeriodSeconds=30'],
    'terminationGracePeriodSeconds',
  ],
];
for (const [args, expect] of rejected) {
  check(`rejects ${args.filter((x) => x !== '--set').join(' ')}`, () => {
    const r = helm(['template', 'gw', chart, ...args]);
    assert(!r.ok, 'rendered without error');
    assert(
      r.err.includes(expect),
      `error does not mention ${expect}: ${r.err.trim()}`,
    );
  });
}

// --- package ------------------------------------------------------------------------
check('helm package (CI-only files left out)', () => {
  const out = mkdtempSync(join(tmpdir(), 'helm-pkg-'));
  try {
    const r = helm(['package', chart, '--destination', out]);
    assert(r.ok, r.err);
    const tgz = readdirSync(out).find((f) => f.endsWith('.tgz'));
    const list = execFileSync('tar', ['tzf', join(out, tgz)], {
      encoding: 'utf8',
    });
    assert(!list.includes('/ci/'), 'ci/ is packaged');
    for (const f of [
      'files/alerts.yaml',
      'files/dashboard.json',
      'values.schema.json',
      'templates/tests/test-predict.yaml',
    ])
      assert(
        list.includes(`api-gateway/${f}`),
        `${f} missing from the package`,
      );
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

// --- no drift between the chart's env and the code ----------------------------------------
check(
  'rendered env (ConfigMap + Secret) matches the variables the code reads (vitest)',
  () => {
    const r = spawnSync(
      'npx',
      [
        '--no-install',
        'vitest',
        'run',
        '--config',
        '.ci/vitest.deploy.config.ts',
      ],
      {
        cwd: root,
        env: {
          ...process.env,
          HELM_BIN: helmBin,
          NO_COLOR: '1',
          FORCE_COLOR: '0',
          ...helmEnvOnly(),
        },
        encoding: 'utf8',
      },
    );
    if (r.status !== 0)
      throw new Error((r.stdout + r.stderr).split('\n').slice(-60).join('\n'));
    const summary = (r.stdout.match(/Tests\s+.*$/m) ?? ['?'])[0];
    // eslint-disable-next-line no-control-regex -- strips ANSI colours from vitest output
    console.log(`       ${summary.replace(/\x1b\[[0-9;]*m/g, '')}`);
  },
);

function helmEnvOnly() {
  return {
    HELM_CONFIG_HOME: helmEnv.HELM_CONFIG_HOME,
    HELM_CACHE_HOME: helmEnv.HELM_CACHE_HOME,
    HELM_DATA_HOME: helmEnv.HELM_DATA_HOME,
  };
}

rmSync(helmHome, { recursive: true, force: true });
const secs = ((Date.now() - started) / 1000).toFixed(1);
if (failures.length) {
  console.log(
    `helm-check: ${failures.length} FAILED, ${passed} passed (${secs} s)`,
  );
  process.exit(1);
}
console.log(`helm-check: all ${passed} checks passed (${secs} s)`);
