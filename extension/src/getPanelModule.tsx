// Registers the panel. OHIF renders panel components with its own React and exposes no React global, so the
// component it receives only renders an empty host <div>; our panel (with hooks) lives in its own React root there.
import React from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { PANEL_NAME } from './ids.js';
import type { ExtensionParams } from './ohif-types.js';
import { ResearchPanel } from './ResearchPanel.js';

export default function getPanelModule(params: ExtensionParams) {
  const roots = new Map<HTMLElement, Root>();
  // One stable callback ref: React calls it with the element on mount and null on unmount.
  const mount = (el: HTMLDivElement | null) => {
    if (el && !roots.has(el)) {
      const root = createRoot(el);
      roots.set(el, root);
      root.render(<ResearchPanel {...params} />);
    }
    if (!el) {
      // Unmount outside the host's commit phase.
      window.setTimeout(() => {
        for (const [host, root] of roots) {
          if (!host.isConnected) {
            root.unmount();
            roots.delete(host);
          }
        }
      }, 0);
    }
  };
  // Plain element objects are compatible with the host's React 18; no hooks run under the host's renderer here.
  const HostPanel = () => React.createElement('div', { ref: mount, 'data-cy': 'zerovar-panel-host', style: { height: '100%', overflow: 'auto' } });
  return [
    {
      name: PANEL_NAME,
      iconName: 'tab-patient-info',
      iconLabel: 'COVID-19',
      label: 'COVID-19 (research)',
      component: HostPanel,
    },
  ];
}
