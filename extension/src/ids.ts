// Identifiers shared by the extension and the mode (pure data: the mode bundle imports this file too).
export const EXTENSION_ID = '@zerovar/ohif-extension-covid';
export const PANEL_NAME = 'covid';
export const PANEL_ID = `${EXTENSION_ID}.panelModule.${PANEL_NAME}`;
export const OVERLAY_BUTTON_ID = 'zerovar-overlay';
export const OVERLAY_EVALUATOR = 'evaluate.zerovar.overlay';

export const COMMANDS = {
  toggleOverlay: 'zerovarToggleOverlay',
  showOverlay: 'zerovarShowOverlay',
  hideOverlay: 'zerovarHideOverlay',
  showTestPattern: 'zerovarShowTestPattern',
  clearOverlay: 'zerovarClearOverlay',
} as const;

/** The toolbar button that shows / hides the attention overlay on the active viewport. */
export const overlayButton = {
  id: OVERLAY_BUTTON_ID,
  uiType: 'ohif.toolButton',
  props: {
    icon: 'tool-invert',
    label: 'Attention overlay',
    tooltip: 'Show / hide the attention (Grad-CAM) overlay',
    commands: COMMANDS.toggleOverlay,
    evaluate: OVERLAY_EVALUATOR,
  },
};
