// GetOrderStatus at a fixed arrival rate: k6's open model (constant-arrival-rate), so a slow
// answer never delays the next call and latency includes any queueing on either side.
//
//   k6 run -e TARGET=127.0.0.1:50051 -e RATE=500 -e DURATION=30s tooling/k6/get_order_status.js
//
// The proto files are loaded from the repository's protos/ (relative to this script, from any
// folder). setup() creates ORDERS orders through CreateOrder (200 by default); every call reads
// one of them at random. VUS VUs are started up front, at most MAX_VUS in all.
// The summary shows grpc_req_duration (p50/p95/p99), calls served by each read tier (from the
// trailing metadata x-served-by), and dropped_iterations: calls the schedule could not start
// because every VU was busy (raise MAX_VUS, or the service is saturated). The only threshold
// is behaviour (every call answered OK); speed is read from the summary, never asserted.
import grpc from 'k6/net/grpc';
import { check } from 'k6';
import { Counter } from 'k6/metrics';

const TARGET = __ENV.TARGET || '127.0.0.1:50051';
const RATE = parseInt(__ENV.RATE || '500', 10);
const DURATION = __ENV.DURATION || '30s';
const ORDERS = parseInt(__ENV.ORDERS || '200', 10);
const PRE_ALLOCATED_VUS = parseInt(__ENV.VUS || '20', 10);
const MAX_VUS = parseInt(__ENV.MAX_VUS || '200', 10);
const SERVICE = 'uoom.orders.v1.OrderService';

export const options = {
  scenarios: {
    get_order_status: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: PRE_ALLOCATED_VUS,
      maxVUs: MAX_VUS,
    },
  },
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
  thresholds: { checks: ['rate==1'] },
};

const client = new grpc.Client();
client.load(['../../protos'], 'uoom/orders/v1/order_service.proto');

const servedBy = {
  'near-cache': new Counter('served_by_near_cache'),
  dax: new Counter('served_by_dax'),
  dynamodb: new Counter('served_by_dynamodb'),
  postgres: new Counter('served_by_postgres'),
};
let connected = false;

function uuid4() {
  return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (c) => {
    const r = (Math.random() * 16) | 0;
    return (c === 'x' ? r : (r & 0x3) | 0x8).toString(16);
  });
}

function createRequest() {
  return {
    request_id: uuid4(),
    customer_id: uuid4(),
    restaurant_id: uuid4(),
    items: [
      {
        item_id: 'pizza-margherita',
        name: 'Pizza Margherita',
        quantity: 1,
        unit_price: { currency_code: 'USD', amount_minor: 1599 },
      },
    ],
    delivery_location: {
      latitude: 40.7128,
      longitude: -74.006,
      address: '123 Main St',
      city: 'New York',
      postal_code: '10001',
    },
  };
}

export function setup() {
  client.connect(TARGET, { plaintext: true, timeout: '10s' });
  const orderIds = [];
  for (let i = 0; i < ORDERS; i++) {
    const res = client.invoke(`${SERVICE}/CreateOrder`, createRequest(), { timeout: '10s' });
    if (res.status !== grpc.StatusOK) {
      throw new Error(`CreateOrder failed: ${res.status} ${JSON.stringify(res.error)}`);
    }
    orderIds.push(res.message.order.orderId);
  }
  client.close();
  return { orderIds };
}

export default function (data) {
  if (!connected) {
    client.connect(TARGET, { plaintext: true, timeout: '10s' });
    connected = true;
  }
  const orderId = data.orderIds[Math.floor(Math.random() * data.orderIds.length)];
  const res = client.invoke(`${SERVICE}/GetOrderStatus`, { order_id: orderId }, { timeout: '5s' });
  check(res, { 'answered OK': (r) => r && r.status === grpc.StatusOK });
  const tier = res && res.trailers && res.trailers['x-served-by'];
  const counter = tier && servedBy[tier[0]];
  if (counter) {
    counter.add(1);
  }
}
