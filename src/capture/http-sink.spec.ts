import { headerValue } from './http-sink.js';

describe('CloudEvents header values (HTTP binding)', () => {
  it('leaves printable ASCII alone and percent-encodes space, quote, percent and the rest (UTF-8)', () => {
    expect(headerValue('/predict')).toBe('/predict');
    expect(headerValue('a b"c%d')).toBe('a%20b%22c%25d');
    expect(headerValue('modèle\n')).toBe('mod%C3%A8le%0A');
  });
});
