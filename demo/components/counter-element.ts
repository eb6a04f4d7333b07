// The <origin-counter> custom element. Loaded on demand by Counter.astro's <script>, so the
// browser fetches two hashed, immutable files from /_astro/ (the bootstrap and this module).
export class OriginCounter extends HTMLElement {
  #count = 0;

  connectedCallback(): void {
    const button = this.querySelector<HTMLButtonElement>('[data-counter-button]');
    const output = this.querySelector<HTMLOutputElement>('[data-counter-value]');
    if (!button || !output || this.hasAttribute('data-ready')) return;
    this.#count = Number(this.dataset.start ?? 0) || 0;
    output.textContent = String(this.#count);
    button.addEventListener('click', () => {
      this.#count += 1;
      output.textContent = String(this.#count);
    });
    // Tests wait for this attribute before clicking.
    this.setAttribute('data-ready', '');
  }
}

export function defineOriginCounter(): void {
  if (!customElements.get('origin-counter')) customElements.define('origin-counter', OriginCounter);
}
