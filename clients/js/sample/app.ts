// A sample app written against the package's types: scripts/check-js-client.sh
// compiles it with tsc --strict (it is not run). It imports the package by
// name, as an app would, through clients/js/package.json's exports.
import chatIoCustomerSDK, { GatewayError, type Auth, type ChatEvent, type CustomerSDK, type Token } from '@chatio-gateway/customer-sdk';

const auth: Auth = {
  getToken: async (): Promise<Token> => ({ accessToken: 'dal:example', entityId: 'customer-1', tokenType: 'Bearer' }),
  getFreshToken: async (): Promise<Token> => ({ accessToken: 'dal:fresh', entityId: 'customer-1' }),
};

const sdk: CustomerSDK = chatIoCustomerSDK.init({
  gatewayUrl: 'https://chat-gw.example',
  auth,
  onError: (e: GatewayError) => console.error('stream stopped:', e.code, e.message),
});

sdk.on('customer_id', (id: string) => console.log('I am', id));
sdk.on('connected', ({ chatsSummary, totalChats }) => console.log(totalChats, chatsSummary.map((c) => c.id)));
sdk.on('new_event', ({ chat, event }) => render(chat, event));
sdk.on('user_is_typing', ({ user }) => console.log(user, 'is typing'));
sdk.on('connection_lost', () => console.log('offline'));
sdk.on('connection_restored', (summary) => console.log('back', summary.totalChats));
sdk.on('*', (name, data) => console.debug(name, data));

function render(chat: string, event: ChatEvent): void {
  if (event.type === 'message') console.log(chat, event.author, event.text ?? '');
}

async function main(): Promise<void> {
  const chat = await sdk.startChat({ properties: { source: { page: 'pricing' } } });
  const sent: ChatEvent = await sdk.sendMessage(chat.id, { text: 'Hello', customId: 'm-1' });
  console.log(sent.id, sent.customId);
  const { chatsSummary, totalChats } = await sdk.getChatsSummary({ offset: 0, limit: 10 });
  console.log(totalChats, chatsSummary[0]?.lastEvent?.text);
  const threads = await sdk.getChatThreadsSummary(chat.id, { limit: 5 });
  const full = await sdk.getChatThreads(chat.id, threads.threadsSummary.map((t) => t.id));
  console.log(full.map((t) => t.events.length));

  const history = sdk.getChatHistory(chat.id);
  for (let page = await history.next(); ; page = await history.next()) {
    for (const e of page.value ?? []) render(chat.id, e);
    if (page.done) break;
  }

  const file = new Blob(['hello'], { type: 'text/plain' });
  const upload = sdk.sendFile(chat.id, { file, customId: 'f-1' }, { onProgress: (p: number) => console.log(Math.round(p * 100) + '%') });
  const { url } = await upload;
  console.log(url);

  sdk.setSneakPeek(chat.id, 'I am typ');
  await sdk.sendRating(chat.id, { value: 'good', comment: 'thanks' });
  await sdk.updateChatProperties(chat.id, { source: { page: 'checkout' } });
  await sdk.updateChatThreadProperties(chat.id, chat.threads[0]!, { tag: { vip: true } });
  await sdk.updateCustomer({ name: 'Jo', fields: { plan: 'pro' } });
  const { timestamp } = await sdk.updateLastSeenTimestamp(chat.id);
  console.log(new Date(timestamp));
  await sdk.closeThread(chat.id);

  try {
    await sdk.getChatsSummary({ limit: 30 });
  } catch (e) {
    if (e instanceof GatewayError && e.code === 'INVALID_ARGS') console.log(e.reason);
  }
  sdk.destroy();
}

void main();
